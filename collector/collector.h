/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector: braid's view of the host — process metadata read from /proc and
 * (with the eBPF collector) the CPU stacks of every process. The only module
 * that reads /proc.
 *
 * This part answers "which process is that?": a process's metadata (the same
 * start time everywhere in braid, so a host PID and its start time name one
 * process across ingest, collector and store), the owner of a loopback TCP
 * socket, and the process that declares a service name in its environment.
 *
 * Every function takes the procfs root ("/proc"; tests pass another) and
 * returns 0 or a negative errno:
 *   -ENOENT  no such process / socket / match (a process that exited)
 *   -EACCES  /proc would not tell (permissions)
 *   -ENOTUNIQ  several processes match (collector__find_service)
 *   -ENOMEM, -EIO
 */
#ifndef BRAID_COLLECTOR_H
#define BRAID_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "profile/profile.h"
#include "util/util.h"

#define COLLECTOR_PROC_ROOT	   "/proc"
#define COLLECTOR_MAX_ENVIRON	   (1u << 20)  /* bytes of /proc/PID/environ read */
#define COLLECTOR_MAX_NET_TABLE	   (64u << 20) /* bytes of /proc/net/tcp{,6} read */
#define COLLECTOR_CONTAINER_ID_MAX 64	       /* hex digits of a container id */
/* What the collector reads of a process is no longer than what the store
 * keeps (agent/agent.c checks both caps at build time). */
#define COLLECTOR_MAX_CMDLINE (64u << 10) /* bytes of /proc/PID/cmdline read */
#define COLLECTOR_MAX_SERVICE 4096	  /* bytes of a declared service name kept */

/* What /proc says about one process. The strings belong to the struct: free
 * them with collector__proc_release (which accepts a zeroed struct). */
struct collector_proc {
	int32_t pid;
	int32_t ns_pid; /* its PID in its innermost PID namespace (NSpid); == pid on the host */
	int64_t start_time_ns; /* see collector__start_time */
	uint64_t start_ticks;  /* /proc/PID/stat's starttime: clock ticks since boot */
	char comm[17];
	char *exe; /* the exe link's target; NULL if unreadable (kernel thread, no permission) */
	char *cmdline; /* argv joined with spaces, at most STORE_MAX_CMDLINE bytes; NULL if empty */
	char *service; /* PYROSCOPE_APPLICATION_NAME, else OTEL_SERVICE_NAME, from its environment
			*/
	char *container_id;   /* from its cgroup path (collector__container_id); NULL if none */
	enum runtime runtime; /* from exe's name: node, python, ruby, java, dotnet, else native */
};

/* Reads /proc/PID/{stat,status,exe,cmdline,environ,cgroup}. Only stat is
 * required (-ENOENT if the process is gone); the rest is left NULL when it
 * can't be read. On error *ret is left zeroed. */
int collector__proc_read(const char *proc_root, int32_t pid, struct collector_proc *ret);
void collector__proc_release(struct collector_proc *p);

/* A process's start time in wall-clock ns since the epoch: the boot time
 * (proc_root/stat's btime, whole seconds, read once and cached) plus
 * /proc/PID/stat's starttime in clock ticks. Every part of braid computes it
 * this way, so (pid, start_time_ns) names the same process everywhere. */
int collector__start_time(const char *proc_root, int32_t pid, int64_t *ret_ns);
/* The same, with /proc/PID/stat's starttime in clock ticks too. */
int collector__start_ticks(const char *proc_root, int32_t pid, int64_t *ret_ns,
			   uint64_t *ret_ticks);

/* This process's vDSO: the kernel maps one image into every process of an
 * ABI, so braid's own names and unwinds every 64-bit process's [vdso].
 * Returns the length of its mapping (from /proc/self/maps) and sets
 * *ret_image to it; 0 and NULL if there is none. */
uint64_t collector__own_vdso(const void **ret_image);

/* Whether a process's stat starttime (start_ticks) and a kernel start time
 * (a task's start_boottime in ns, as samples carry it) name the same start,
 * to a clock tick. */
bool collector__same_start(uint64_t start_ticks, uint64_t boot_ns);
/* The kernel start times [*ret_min, *ret_max) that collector__same_start
 * takes for start_ticks, for a check in the kernel; false if unknown. */
bool collector__start_boot_range(uint64_t start_ticks, uint64_t *ret_min, uint64_t *ret_max);

/* The start time collector__start_time gives a process whose kernel start
 * (start_boottime) is boot_ns: for a process gone before /proc was read. */
int collector__start_time_of_boot(const char *proc_root, uint64_t boot_ns, int64_t *ret_ns);

/* Finds, in proc_root/net/tcp and tcp6, the socket whose local address is
 * `local` and whose remote address is `remote` (AF_INET or AF_INET6;
 * IPv4-mapped IPv6 addresses match their IPv4 form in either table) and
 * returns its inode. For a connection braid accepted, pass the client's
 * address as `local` and braid's as `remote`: that is the client's socket.
 * The tables are read in one pass each, comparing the local address first. */
int collector__tcp_socket_inode(const char *proc_root, const struct sockaddr *local,
				const struct sockaddr *remote, uint64_t *ret_inode);

/* Finds the process holding socket `inode` open: first among the n_hints
 * PIDs in hints (processes that pushed before: an SDK reconnects from the
 * same process, so this is usually the only scan), then in every process.
 * Returns the thread-group leader's PID. */
int collector__socket_owner(const char *proc_root, uint64_t inode, const int32_t *hints,
			    size_t n_hints, int32_t *ret_pid);

/* Finds the one process whose environment sets PYROSCOPE_APPLICATION_NAME
 * or OTEL_SERVICE_NAME to `service` (either variable: an SDK may push under
 * either name). -ENOENT if none, -ENOTUNIQ if several
 * (the push can't be told apart). Reads every process's environ: callers
 * cache the answer. */
int collector__find_service(const char *proc_root, const char *service, int32_t *ret_pid);

/* The container id in one line of /proc/PID/cgroup (v1 or v2), for the
 * docker ("/docker/ID", "docker-ID.scope"), containerd ("cri-containerd-ID
 * .scope", ".../ID"), cri-o ("crio-ID.scope") and podman ("libpod-ID.scope")
 * forms: the last path component holding 64 hex digits, written lowercase to
 * ret (at least COLLECTOR_CONTAINER_ID_MAX + 1 bytes). -ENOENT if the line
 * names no container, or only a container's monitor ("crio-conmon-ID"). */
int collector__container_id(const char *cgroup_line, size_t len, char *ret);

/* The runtime an executable's path implies: "node"/"nodejs" -> node,
 * "python*" -> python, "ruby*" -> ruby, "java" -> jvm, "dotnet" -> dotnet,
 * anything else native; NULL -> unknown. */
enum runtime collector__runtime_of_exe(const char *exe);

/* ---- symbolization ------------------------------------------------------ */
/*
 * Turning sampled addresses into frames. Kernel addresses through
 * /proc/kallsyms; user addresses through /proc/PID/maps and the ELF file's
 * .symtab (else .dynsym, plus a separate debug file's .symtab, found by
 * build id or .gnu_debuglink, or else its MiniDebugInfo) read with libelf;
 * JIT code through /tmp/perf-PID.map. What can't be named keeps its module
 * and offset.
 */

#define COLLECTOR_KERNEL_MODULE	       "[kernel.kallsyms]"
#define COLLECTOR_JIT_MODULE	       "[jit]"	    /* anonymous executable memory */
#define COLLECTOR_UNKNOWN_MODULE       "[unknown]"  /* an address in no mapping */
#define COLLECTOR_KSYM_MAX_SIZE	       (1u << 20)   /* past the last symbol: unknown */
#define COLLECTOR_MAX_KALLSYMS	       (64u << 20)  /* bytes of kallsyms read */
#define COLLECTOR_MAX_PERF_MAP	       (256u << 20) /* bytes of one perf map read */
#define COLLECTOR_MAX_MAPS	       (16u << 20)  /* bytes of /proc/PID/maps read */
#define COLLECTOR_MAX_SYMBOL_NAME      4096	    /* longer names are cut */
#define COLLECTOR_DEFAULT_SYMBOL_CACHE (16u << 20)  /* bytes of ELF symbol tables kept */

/* Kernel symbols: the text symbols (t, T, w, W) of kallsyms, of the kernel
 * and of its modules ("name\t[mod]"), sorted once by address. */
struct collector_ksyms;

/* Parses kallsyms text. -EACCES with a message when every address is zero
 * (kptr_restrict hides them from this user), -EBADMSG for a malformed line
 * (its number in err). *ret is freed with collector_ksyms__free. */
int collector_ksyms__parse(const char *text, size_t len, struct errbuf *err,
			   struct collector_ksyms **ret);
/* The same on a file (at most COLLECTOR_MAX_KALLSYMS bytes). */
int collector_ksyms__load(const char *path, struct errbuf *err, struct collector_ksyms **ret);
void collector_ksyms__free(struct collector_ksyms *k);
size_t collector_ksyms__count(const struct collector_ksyms *k);
/* The symbol holding addr: the one with the greatest start <= addr, unless
 * addr is past the end of its module's (or the kernel's) last symbol by more
 * than COLLECTOR_KSYM_MAX_SIZE. *ret_module is COLLECTOR_KERNEL_MODULE or
 * "[mod]". Strings live as long as k. -ENOENT if none. */
int collector_ksyms__lookup(const struct collector_ksyms *k, uint64_t addr, const char **ret_name,
			    const char **ret_module, uint64_t *ret_offset);

/* The function symbols of one ELF file (STT_FUNC and STT_GNU_IFUNC of
 * .symtab, else of .dynsym; a .symtab name's "@VERSION" is cut), its
 * PT_LOAD segments, its GNU build id, and what it says of its debug
 * symbols: .gnu_debuglink (a debug file's name and CRC32) and
 * .gnu_debugdata (MiniDebugInfo). */
struct collector_elf;

#define COLLECTOR_MAX_DEBUGDATA	 (64u << 20) /* bytes of .gnu_debugdata, packed or not */
#define COLLECTOR_MAX_DEBUG_FILE (1u << 30)  /* bytes of a debug file checked by CRC */
#define COLLECTOR_DEBUG_ROOT	 "/usr/lib/debug"

/* Reads fd (the caller keeps it; nothing refers to it afterwards). `name`
 * is only for messages. -ENOEXEC with a message when it is not an ELF file. */
int collector_elf__read(int fd, const char *name, struct errbuf *err, struct collector_elf **ret);
/* The same on ELF bytes in memory (the vDSO). */
int collector_elf__read_memory(const void *data, size_t len, const char *name, struct errbuf *err,
			       struct collector_elf **ret);
void collector_elf__free(struct collector_elf *e);
/* The ELF virtual address of a file offset, through the PT_LOAD segment
 * that holds it: vaddr = off - p_offset + p_vaddr. For an address sampled in
 * a mapping [start, end) of file offset pgoff: off = addr - start + pgoff.
 * This is right for PIE, non-PIE and shared objects alike. -ENOENT if no
 * segment holds it. */
int collector_elf__vaddr(const struct collector_elf *e, uint64_t file_offset, uint64_t *ret_vaddr);
/* The function holding vaddr (by its st_value and st_size; a zero-size
 * symbol holds up to the next symbol). The name is as in the table
 * (mangled) and lives as long as e. -ENOENT if none. */
int collector_elf__lookup(const struct collector_elf *e, uint64_t vaddr, const char **ret_name,
			  uint64_t *ret_offset);
/* Whether the symbols came from a .symtab (else .dynsym, or none). */
bool collector_elf__has_symtab(const struct collector_elf *e);
/* .gnu_debuglink's file name (and CRC32 in *ret_crc, if not NULL), NULL if
 * the file has none or a malformed one. The name lives as long as e. */
const char *collector_elf__debuglink(const struct collector_elf *e, uint32_t *ret_crc);
/* Adds to e the symbols of `from` (a debug file, or the MiniDebugInfo's ELF
 * file) at addresses e has none at: e keeps its own name where both have
 * one. Only e's segments translate addresses (a debug file has the same
 * addresses). -EFBIG with a message past the caps of one file. */
int collector_elf__add_symbols(struct collector_elf *e, const struct collector_elf *from,
			       const char *name, struct errbuf *err);
/* Decompresses the .gnu_debugdata of the file e was read from (fd, read
 * again) with liblzma, reads the ELF file inside and adds its symbols to e.
 * -ENOENT (no message) if e has none; -EBADMSG (corrupt or truncated xz,
 * no ELF inside) or -EFBIG (more than COLLECTOR_MAX_DEBUGDATA bytes) with
 * a message. */
int collector_elf__read_minidebuginfo(struct collector_elf *e, int fd, const char *name,
				      struct errbuf *err);
/* The build id in lowercase hex, NULL if it has none. */
const char *collector_elf__build_id(const struct collector_elf *e);
size_t collector_elf__count(const struct collector_elf *e);
/* Bytes of memory e holds (for the cache bound). */
size_t collector_elf__bytes(const struct collector_elf *e);

/* A perf map (/tmp/perf-PID.map, written by `node --perf-basic-prof`,
 * `python -X perf`, JVM agents): "START SIZE name" lines, hex with or
 * without 0x. Code may be moved and its address reused: where entries
 * overlap, the one written last wins. */
struct collector_perfmap;

/* Parses perf map text; a malformed line is skipped and counted, never an
 * error (a JIT may be writing the last line as it is read). */
int collector_perfmap__parse(const char *text, size_t len, struct collector_perfmap **ret);
/* Adds the lines of text (the part of the file appended since the last
 * read) to m. */
int collector_perfmap__append(struct collector_perfmap *m, const char *text, size_t len);
void collector_perfmap__free(struct collector_perfmap *m);
size_t collector_perfmap__count(const struct collector_perfmap *m);
size_t collector_perfmap__skipped(const struct collector_perfmap *m);
/* The entry holding addr; the name lives as long as m. -ENOENT if none. */
int collector_perfmap__lookup(const struct collector_perfmap *m, uint64_t addr,
			      const char **ret_name, uint64_t *ret_offset);

/* Demangles an Itanium C++ (or legacy Rust) symbol name: with params false,
 * without its parameter list and trailing qualifiers ("ns::Cls::fn(int)
 * const" -> "ns::Cls::fn"). Returns a malloc'ed string, or NULL when name is
 * not mangled or can't be demangled (the caller keeps the raw name). */
char *collector__demangle(const char *name, bool params);

/* The symbolizer: kernel symbols, each process's executable mappings, the
 * ELF files they map (shared between processes, keyed by build id or by
 * device and inode, bounded in bytes) and their perf maps. One thread. */
struct collector_symbolizer;

struct collector_symbolizer_options {
	const char *proc_root;	/* NULL: COLLECTOR_PROC_ROOT */
	const char *kallsyms;	/* NULL: PROC_ROOT/kallsyms */
	size_t max_cache_bytes; /* ELF symbol tables kept; 0: COLLECTOR_DEFAULT_SYMBOL_CACHE */
	bool no_kernel;		/* don't load kallsyms */
	bool demangle_params;	/* C++ names with their parameter lists */
};

struct collector_symbolizer_stats {
	uint64_t frames;	  /* addresses symbolized */
	uint64_t frames_unnamed;  /* ... left with module + offset only */
	uint64_t frames_unmapped; /* ... in no mapping of their process */
	uint64_t processes_lost;  /* processes whose maps could not be read (exited) */
	uint64_t elf_loaded;	  /* ELF files read */
	uint64_t elf_errors;	  /* ELF files that could not be read */
	uint64_t elf_evicted;	  /* ELF entries dropped for the cache bound */
	uint64_t elf_shared;	  /* lookups served by an entry another process loaded */
	uint64_t perfmap_loads;	  /* perf map (re)reads */
	/* where the names of each ELF file read came from (one of these per
	 * elf_loaded that was kept) */
	uint64_t names_symtab;	      /* its own .symtab */
	uint64_t names_dynsym;	      /* its .dynsym only: no debug symbols found */
	uint64_t names_build_id;      /* + DEBUG_ROOT/.build-id/xx/rest.debug */
	uint64_t names_debuglink;     /* + the debug file .gnu_debuglink names */
	uint64_t names_minidebuginfo; /* + its .gnu_debugdata */
	uint64_t debug_rejected;      /* debug files found but not the binary's (CRC, build id) */
	uint64_t debug_errors;	      /* debug files or .gnu_debugdata that could not be read */
	size_t cache_bytes;	      /* bytes held by ELF entries now */
	size_t processes;	      /* processes whose maps are cached now */
};

/* -EACCES/-ENOENT with a message when kallsyms can't be read (unless
 * no_kernel). */
int collector_symbolizer__new(const struct collector_symbolizer_options *o, struct errbuf *err,
			      struct collector_symbolizer **ret);
void collector_symbolizer__free(struct collector_symbolizer *s);

/* Symbolizes n kernel addresses into ret_frames (n entries, always all
 * written): kind FRAME_KERNEL, module COLLECTOR_KERNEL_MODULE or "[mod]",
 * name the symbol and offset 0, or name NULL and offset the address. */
void collector_symbolizer__kernel(struct collector_symbolizer *s, const uint64_t *ips, size_t n,
				  struct frame *ret_frames);
/* Symbolizes n user addresses of process pid into ret_frames (always all
 * written; a frame is function-level: offset 0 when named):
 *   ELF code:    FRAME_NATIVE, module the mapped path, name demangled; or
 *                name NULL and offset the ELF virtual address;
 *   perf map:    FRAME_JIT, module COLLECTOR_JIT_MODULE, name the map's;
 *   other anonymous executable memory: FRAME_JIT, COLLECTOR_JIT_MODULE,
 *                name NULL, offset 0;
 *   no mapping:  FRAME_UNKNOWN, COLLECTOR_UNKNOWN_MODULE, name NULL, offset 0.
 * The process's maps are read on first use and again when an address falls
 * outside them (at most once per pid between trims); files are opened
 * through PROC_ROOT/PID/map_files or PROC_ROOT/PID/root (containers) and
 * checked against the mapping's device and inode. Returns 0, or -ENOENT
 * when the process's maps could not be read (frames all unknown). */
int collector_symbolizer__user(struct collector_symbolizer *s, int32_t pid, const uint64_t *ips,
			       size_t n, struct frame *ret_frames);
/* Reads a process's maps now and loads the ELF files it maps, so that its
 * samples can be named after it exits. -ENOENT if it is gone already. */
int collector_symbolizer__prefetch(struct collector_symbolizer *s, int32_t pid);
/* Forgets a process (it exited, or its PID was reused). */
void collector_symbolizer__forget(struct collector_symbolizer *s, int32_t pid);
/* Between drains: forgets processes that no longer exist, evicts ELF entries
 * (least recently used first) down to the bound. Strings handed out by
 * __kernel and __user stay valid until the next trim or free. */
void collector_symbolizer__trim(struct collector_symbolizer *s);
void collector_symbolizer__stats(const struct collector_symbolizer *s,
				 struct collector_symbolizer_stats *ret);

/* ---- unwind rules (cfi.c) --------------------------------------------- */
/*
 * What it takes to unwind one x86-64 frame without frame pointers, read from
 * an ELF file's .eh_frame and .debug_frame (DWARF call frame information)
 * and compacted into a sorted table of address ranges, each with one rule:
 * where the caller's frame (the CFA) is, and where the caller's rbp was
 * saved. The return address is always at CFA-8 (the table refuses anything
 * else). The BPF program looks an address up and unwinds with the row;
 * docs/unwind.md says why the rows have this shape.
 */

#define COLLECTOR_CFI_MAX_SECTION (256u << 20) /* bytes of .eh_frame or .debug_frame read */
#define COLLECTOR_CFI_MAX_FDES	  (2u << 20)   /* FDEs read from one file */
#define COLLECTOR_CFI_MAX_ROWS	  (4u << 20)   /* rows of one table (and ranges before merging) */
#define COLLECTOR_CFI_MAX_DEPTH	  16	       /* DW_CFA_remember_state nesting */
#define COLLECTOR_CFI_MAX_INSNS	  (1u << 16)   /* CFA instructions of one CIE or FDE */

enum collector_cfi_kind {
	COLLECTOR_CFI_NONE = 0, /* no rule here: the unwinder falls back to frame pointers */
	COLLECTOR_CFI_RSP,	/* CFA = rsp + cfa_offset */
	COLLECTOR_CFI_RBP,	/* CFA = rbp + cfa_offset */
	COLLECTOR_CFI_PLT,	/* a PLT stub: CFA = rsp + 8, + 8 more when (rip & 15) >= 11 (the
				   DW_CFA_def_cfa_expression GCC/binutils emit for .plt) */
	COLLECTOR_CFI_SIGNAL,	/* a signal frame (CIE augmentation 'S', e.g. __restore_rt):
				   the caller's registers are in the ucontext at rsp */
	COLLECTOR_CFI_STOP,	/* the return address is undefined (DW_CFA_undefined rip):
				   the thread's root, e.g. _start, clone3's child */
};

struct collector_cfi_row {
	uint64_t vaddr; /* start of the range, in the file's virtual addresses (as in
			   its symbol table); the row holds until the next row's vaddr */
	uint8_t kind;	/* enum collector_cfi_kind */
	int32_t cfa_offset;
	int32_t rbp_offset; /* where the caller's rbp is saved, as an offset from the CFA;
			       0: rbp is unchanged (same value / not saved) */
};

/* Why a range got COLLECTOR_CFI_NONE. */
enum collector_cfi_reason {
	COLLECTOR_CFI_NO_FDE = 0,      /* no FDE covers it (a gap, or past the last) */
	COLLECTOR_CFI_CFA_REGISTER,    /* the CFA is computed from neither rsp nor rbp */
	COLLECTOR_CFI_CFA_EXPRESSION,  /* ... by an expression other than the PLT one */
	COLLECTOR_CFI_RBP_RULE,	       /* rbp saved in a register, by an expression, ... */
	COLLECTOR_CFI_RA_RULE,	       /* the return address is not at CFA-8 */
	COLLECTOR_CFI_RSP_RULE,	       /* rsp given a rule of its own */
	COLLECTOR_CFI_BAD_CIE,	       /* a CIE with another return address column or
					  augmentation, or no CFA-8 return address */
	COLLECTOR_CFI_BAD_INSTRUCTION, /* an instruction this reader does not know */
	COLLECTOR_CFI_OFFSET_RANGE,    /* an offset that does not fit 32 bits */
	COLLECTOR_CFI_GO_FRAME,	       /* a Go function that sets up a frame: Go keeps frame
					  pointers there (COLLECTOR_CFI_GO) */
	COLLECTOR_CFI_REASONS
};

struct collector_cfi_stats {
	uint64_t cies, fdes;   /* read (FDEs of both sections) */
	uint64_t fdes_skipped; /* FDEs of no use: empty, discarded (address 0), or a CIE
				  whose address encoding can't be followed */
	uint64_t ranges;       /* ranges the FDEs gave, before merging */
	uint64_t
		none[COLLECTOR_CFI_REASONS]; /* ranges (rows for NO_FDE) that are NONE, by reason */
	size_t rows;
};

/* The rows of one file, sorted by vaddr, the last one NONE. */
struct collector_cfi;

/* Reads the unwind rules of the x86-64 ELF file fd (the caller keeps fd;
 * nothing refers to it afterwards). `name` is for messages only. -ENOEXEC
 * when it is not an ELF file, -ENOTSUP for another machine, -EBADMSG for a
 * malformed or truncated section (the message names the file, the section
 * and the offset), -E2BIG/-EFBIG past a cap. A file with neither section
 * gives an empty table. *ret is freed with collector_cfi__free. */
int collector_cfi__read(int fd, const char *name, struct errbuf *err, struct collector_cfi **ret);
/* The same on ELF bytes in memory (the vDSO). */
int collector_cfi__read_memory(const void *data, size_t len, const char *name, struct errbuf *err,
			       struct collector_cfi **ret);
/* collector_cfi__parse's flags. COLLECTOR_CFI_GO: the file is a Go binary
 * (collector_cfi__read tells by its .gopclntab or .go.buildinfo section).
 * The Go compiler keeps a frame pointer in every function that sets up a
 * frame, so the .debug_frame rules of those functions give nothing a
 * frame-pointer step does not, but weigh the most: they are left out (NONE,
 * COLLECTOR_CFI_GO_FRAME), and only frameless functions (leaves, whose
 * caller a frame-pointer walk would lose) keep theirs. */
#define COLLECTOR_CFI_GO 1u
/* The same on the raw bytes of the two sections (either may be NULL/0),
 * each with the virtual address it is loaded at (pc-relative pointers are
 * relative to it). For tests and the fuzzer. */
int collector_cfi__parse(const void *eh_frame, size_t eh_len, uint64_t eh_addr,
			 const void *debug_frame, size_t debug_len, unsigned flags,
			 const char *name, struct errbuf *err, struct collector_cfi **ret);
void collector_cfi__free(struct collector_cfi *t);
/* The row that holds vaddr (the last with row->vaddr <= vaddr); NULL before
 * the first row. It lives as long as t. */
const struct collector_cfi_row *collector_cfi__find(const struct collector_cfi *t, uint64_t vaddr);
const struct collector_cfi_row *collector_cfi__rows(const struct collector_cfi *t);
size_t collector_cfi__count(const struct collector_cfi *t);
/* Bytes of memory t holds. */
size_t collector_cfi__bytes(const struct collector_cfi *t);
void collector_cfi__stats(const struct collector_cfi *t, struct collector_cfi_stats *ret);
/* "none", "rsp", ... and "no-fde", "cfa-register", ...: for messages and
 * cfidump. */
const char *collector_cfi__kind_name(unsigned kind);
const char *collector_cfi__reason_name(unsigned reason);

/* ---- unwind rules in the kernel (unwind.c) ------------------------------ */
/*
 * Puts the rules of cfi.c into the maps bpf/profile.bpf.c unwinds user
 * stacks with: the rows of every executable file a process maps (once per
 * file, keyed by device and inode), a page index over them, and each
 * process's executable mappings. When a file's rows don't fit, the files
 * no process maps are unloaded, least recently used first; a file that
 * still doesn't fit gets none (the program walks frame pointers there).
 * Built with the eBPF sampler only (NULL-safe: NULL is "unwinding off"); collector_sampler calls it
 * for every process announced. docs/unwind.md, "In the kernel".
 */

/* The rules' memory in the kernel: unwind_rows (8 bytes a row) gets it,
 * the page index a row count / 32 entries. */
#define COLLECTOR_UNWIND_DEFAULT_BYTES (16u << 20)
#define COLLECTOR_UNWIND_MIN_BYTES     (1u << 20)
#define COLLECTOR_UNWIND_MAX_BYTES     (1u << 30)
#define COLLECTOR_UNWIND_MAX_PROCS     8192  /* processes unwound with rules */
#define COLLECTOR_UNWIND_MAX_FILES     16384 /* files seen (loaded or not) */

/* The maps, by fd (the sampler keeps them), and their sizes. */
struct collector_unwind_maps {
	int rows_fd, pages_fd, procs_fd;
	uint32_t max_rows, max_pages;
	/* unwind_rows mapped (BPF_F_MMAPABLE, mmap of rows_fd, max_rows * 8
	 * bytes, shared, writable): the rows are written there */
	void *rows;
};

struct collector_unwind_stats {
	uint64_t files;		   /* files seen */
	uint64_t files_loaded;	   /* ... whose rules are in the maps */
	uint64_t files_unreadable; /* ... not ELF, or malformed rules: not tried again */
	uint64_t files_unopened;   /* tries that couldn't open a file (its process gone) */
	uint64_t files_no_room;	   /* ... whose rules didn't fit (rows, pages, files) */
	uint64_t rows, pages;	   /* in the maps */
	uint64_t rows_unfit;	   /* rows made NONE: rbp saved at an odd offset */
	uint64_t procs_added;	   /* process entries written */
	uint64_t procs_no_room;	   /* ... not: the map was full */
	uint64_t procs_idle;	   /* entries taken back from processes idle for a minute */
	uint64_t mappings_dropped; /* executable mappings past BRAID_UNWIND_MAX_MAPPINGS */
	uint64_t files_evicted;	   /* files unloaded to make room (no process mapped them) */
	uint64_t user_bytes;	   /* what unwind.c keeps in user space for the maps */
	uint64_t requests_queued;  /* processes waiting for the loader's thread */
	uint64_t requests_dropped; /* ... not queued: LOADER_MAX_QUEUE were waiting */
	uint64_t map_bytes;	   /* the kernel memory of the three maps (their memlock) */
};

/* How user stacks are walked. */
enum collector_unwind_mode {
	COLLECTOR_UNWIND_CFI = 0, /* "cfi": the rules of .eh_frame, frame pointers where none */
	COLLECTOR_UNWIND_FP,	  /* "fp": frame pointers alone (bpf_get_stack) */
	/* "cfi-loop": the rules, walked with a bounded loop as on kernels
	 * without bpf_loop (before 5.17) even where it exists: tests that path */
	COLLECTOR_UNWIND_CFI_LOOP,
};
/* Parses "cfi", "fp" or "cfi-loop"; -EINVAL else. */
int collector_unwind__mode_parse(const char *s, enum collector_unwind_mode *ret);
const char *collector_unwind__mode_name(enum collector_unwind_mode m);

/* Why an unwound user stack ended (bpf/profile.h, enum braid_unwind_end). */
enum collector_unwind_end {
	COLLECTOR_UNWIND_END_ROOT = 0, /* the thread's root */
	COLLECTOR_UNWIND_END_NO_RULE,  /* no rule, and frame pointers ended (rbp 0 or below rsp) */
	COLLECTOR_UNWIND_END_FAULT,    /* a read of the user stack failed */
	COLLECTOR_UNWIND_END_BAD_CFA,  /* a rule gave a CFA not above rsp */
	COLLECTOR_UNWIND_END_DEPTH,    /* COLLECTOR_MAX_DEPTH frames and more */
	COLLECTOR_UNWIND_END_COUNT
};
/* "root", "no_rule", "fault", "bad_cfa", "depth" (metric labels); NULL past the end. */
const char *collector_unwind__end_name(enum collector_unwind_end e);

struct collector_unwind;

int collector_unwind__new(const struct collector_unwind_maps *maps, const char *proc_root,
			  struct collector_unwind **ret);
void collector_unwind__free(struct collector_unwind *u);
/* Loads the rules of pid's executable files not loaded yet and writes its
 * mappings (again after an exec, or a dlopen). A process gone, a file
 * unreadable or a full map is counted, not an error: only -ENOMEM is
 * returned. */
int collector_unwind__add_process(struct collector_unwind *u, int32_t pid);
/* Forgets pid's mappings (it exited, or its PID names another process). */
void collector_unwind__remove_process(struct collector_unwind *u, int32_t pid);
void collector_unwind__stats(const struct collector_unwind *u, struct collector_unwind_stats *ret);

/* The same requests run on a thread of its own (unwind_loader.c), in order,
 * so that the sampler's thread never waits for a file's rules. The loader
 * owns u (freed with it); its thread starts with the first request (it has
 * the capabilities of the thread making it) and is the only one to touch u
 * from then on. Requests return the thread's first -ENOMEM, else 0; the
 * stats are as of the last request done. NULL-safe (unwinding off). */
struct collector_unwind_loader;

int collector_unwind_loader__new(struct collector_unwind *u, struct collector_unwind_loader **ret);
void collector_unwind_loader__free(struct collector_unwind_loader *l);
int collector_unwind_loader__add(struct collector_unwind_loader *l, int32_t pid);
int collector_unwind_loader__remove(struct collector_unwind_loader *l, int32_t pid);
void collector_unwind_loader__stats(struct collector_unwind_loader *l,
				    struct collector_unwind_stats *ret);

/* ---- eBPF sampling ----------------------------------------------------- */
/*
 * The sampler: bpf/profile.bpf.c attached to the cpu-clock event of every
 * online CPU, counting (process, thread, comm, kernel stack, user stack) in
 * the kernel. Draining swaps the map generations, so that every sample is
 * read exactly once. Needs CAP_BPF and CAP_PERFMON (or root) and kernel BTF.
 */

#define COLLECTOR_DEFAULT_FREQ 97    /* Hz: off the 100 Hz timer tick, like perf */
#define COLLECTOR_MAX_FREQ     10000 /* Hz */
#define COLLECTOR_MAX_PIDS     4096  /* --pid filters */
#define COLLECTOR_MAX_DEPTH    127   /* frames per kernel or user stack */

struct collector_sampler_options {
	unsigned freq;		 /* Hz; 0: COLLECTOR_DEFAULT_FREQ */
	bool no_kernel, no_user; /* leave out kernel or user stacks */
	bool include_idle;	 /* count the idle task (pid 0) too */
	const int32_t *pids;	 /* keep only these processes (host PIDs); n_pids 0: all */
	size_t n_pids;
	const char *cgroup;	   /* keep only this cgroup v2 directory and below; NULL: all */
	unsigned drain_interval_s; /* how often the caller drains (sizes the maps); 0: 1 */
	size_t max_stacks;	   /* stacks per generation; 0: sized from freq and CPUs */
	bool verbose;		   /* libbpf's messages to stderr */
	enum collector_unwind_mode unwind;
	uint64_t unwind_bytes; /* the rules' kernel memory; 0: COLLECTOR_UNWIND_DEFAULT_BYTES */
};

/* What the kernel counted, since the sampler opened. */
struct collector_sampler_stats {
	uint64_t samples;	   /* counted */
	uint64_t filtered;	   /* left out by a filter, or idle */
	uint64_t lost_full;	   /* lost: the counts map was full */
	uint64_t kstack_fault;	   /* kernel stacks bpf_get_stack could not read */
	uint64_t ustack_fault;	   /* user stacks ... */
	uint64_t stack_full;	   /* stacks not stored: the stacks map was full */
	uint64_t stack_other;	   /* stacks not stored for another reason */
	uint64_t kstack_truncated; /* kernel stacks deeper than COLLECTOR_MAX_DEPTH */
	uint64_t ustack_truncated; /* user stacks ... */
	uint64_t announce_lost;	   /* new processes not announced: the ring was full */
	uint64_t announced;	   /* new processes announced and read */
	uint64_t execs;		   /* announced processes that exec'd: announced again */
	uint64_t drained;	   /* samples read by drains */
	uint64_t drains;
	uint64_t drain_wait_timeouts; /* drains that gave up waiting for a running program */
	uint64_t lost_drain;	      /* samples read but not passed on (the callback failed) */
	unsigned cpus;		      /* CPUs sampled */
	size_t max_stacks;	      /* the map size chosen */
	/* user stacks unwound with the rules of .eh_frame (unwind.c) */
	uint64_t unwind_stacks;	   /* stacks unwound with the rules */
	uint64_t unwind_fp_steps;  /* ... frames of them stepped by frame pointers */
	uint64_t unwind_no_regs;   /* stacks left to bpf_get_stack: no user registers */
	uint64_t unwind_signal;	   /* stacks ended at a signal frame */
	uint64_t unwind_refreshes; /* processes read again: an address in no mapping with rules */
	uint64_t unwind_end[COLLECTOR_UNWIND_END_COUNT]; /* unwound stacks, by how they ended */
	uint64_t ustack_fp;    /* user stacks walked by frame pointers alone (bpf_get_stack) */
	uint64_t unwind_stale; /* ... of them: the process's entry was of an earlier one */
	struct collector_unwind_stats unwind;
	/* the sampling program's own run time, counted by the kernel while
	 * kernel.bpf_stats_enabled is 1 (0 else): it runs on the sampled CPUs */
	uint64_t prog_run_ns, prog_runs;
	uint64_t map_bytes; /* kernel memory of all the sampler's maps (memlock), unwind's too */
};

/* One counted (process, thread, stacks) of a drain. The arrays are valid
 * during the callback only. */
struct collector_sample {
	int32_t pid, tid;
	char comm[16];	      /* the thread's */
	const uint64_t *kips; /* kernel return addresses, leaf first */
	size_t n_kips;
	const uint64_t *uips; /* user ... */
	size_t n_uips;
	bool kstack_lost, ustack_lost; /* a stack was there but could not be stored */
	uint64_t start;		 /* the process's start, ns since boot: a reused PID differs */
	uint64_t thread_pointer; /* pthread_self() of the thread on x86-64, else 0 */
	uint64_t count;
};
typedef int (*collector_sample_fn)(void *ctx, const struct collector_sample *s);

struct collector_sampler;

/* Loads the program, sizes its maps, fills the filters and attaches it to
 * every online CPU. -EPERM/-EACCES without the capabilities, -ENOENT without
 * kernel BTF, -ESRCH for a --pid that does not exist; a message in err. */
int collector_sampler__open(const struct collector_sampler_options *o, struct errbuf *err,
			    struct collector_sampler **ret);
/* Stops sampling (detaches from every CPU): a drain after it reads the last
 * samples, and nothing is counted after. Idempotent. */
void collector_sampler__stop(struct collector_sampler *s);
/* Detaches and frees. The samples counted since the last drain are lost:
 * stop and drain first. */
void collector_sampler__close(struct collector_sampler *s);
/* Switches generations, waits for programs still counting into the old
 * one, then calls fn for each of its entries and clears it. A non-zero
 * return from fn stops the calls (the generation is still cleared, and the
 * samples not passed are counted as lost) and is returned. */
int collector_sampler__drain(struct collector_sampler *s, collector_sample_fn fn, void *ctx);
int collector_sampler__stats(const struct collector_sampler *s,
			     struct collector_sampler_stats *ret);
/* The sampling frequency in Hz. */
unsigned collector_sampler__freq(const struct collector_sampler *s);

/* Processes sampled for the first time are announced at once (a ring
 * buffer, one wake-up per new process), so that their mappings can be read
 * before a short-lived process exits. The fd polls readable (epoll) when
 * announcements wait; collector_sampler__new_pids calls fn for each without
 * blocking. */
int collector_sampler__new_pids_fd(const struct collector_sampler *s);
typedef int (*collector_pid_fn)(void *ctx, int32_t pid);
int collector_sampler__new_pids(struct collector_sampler *s, collector_pid_fn fn, void *ctx);
/* Forgets that pid was announced (the process exited, or its PID was
 * reused): it is announced again when next sampled. */
void collector_sampler__forget(struct collector_sampler *s, int32_t pid);

/* ---- the collector: sampling, symbolization and process metadata ---------- */

struct collector_options {
	const char *proc_root; /* NULL: COLLECTOR_PROC_ROOT */
	struct collector_sampler_options sampler;
	struct collector_symbolizer_options symbols; /* its proc_root is this one's */
};

/* One symbolized (process, thread, stack) of a drain, with its count. */
struct collector_row {
	const struct collector_proc *process; /* start_time_ns 0: it exited unread */
	const char *service; /* its service: environment, else container id, else comm */
	int32_t tid;
	uint64_t thread_pointer; /* pthread_self() of the thread on x86-64, else 0 */
	const char *thread_comm;
	int64_t second;		    /* the drain's */
	const struct frame *frames; /* leaf first: kernel frames, then user frames */
	size_t n_frames;
	size_t n_kernel; /* how many of frames are kernel frames */
	int64_t count;
};
typedef int (*collector_row_fn)(void *ctx, const struct collector_row *r);

struct collector_stats {
	struct collector_sampler_stats sampler;
	struct collector_symbolizer_stats symbols;
	uint64_t rows;
	uint64_t processes_seen;       /* processes ever seen in samples */
	uint64_t processes_unreadable; /* ... whose metadata could not be read (exited) */
	uint64_t processes_reused;     /* PIDs found to name a new process */
	uint64_t processes_prefetched; /* new processes read as soon as announced */
	uint64_t processes_refreshed;  /* read again when announced again after an exec */
	uint64_t samples_stack_lost;   /* samples with a stack that could not be stored */
	size_t processes;	       /* processes whose metadata is cached now */
};

struct collector;

/* Opens the sampler and the symbolizer (see their errors). */
int collector__open(const struct collector_options *o, struct errbuf *err, struct collector **ret);
void collector__close(struct collector *c);
/* Drains the sampler, symbolizes what it read and calls fn once per row,
 * all with `second` (the caller drains each second, just after it ends).
 * Strings and frames are valid during the call only. */
int collector__drain(struct collector *c, int64_t second, collector_row_fn fn, void *ctx);
/* An fd that polls readable (epoll) when processes sampled for the first
 * time wait to be read; collector__poll reads them (metadata, mappings and
 * their ELF files) without blocking. A caller that waits on the fd between
 * drains names the samples of processes that live less than a second. */
int collector__fd(const struct collector *c);
int collector__poll(struct collector *c);
/* Stops sampling: the next drain is the last one with samples. */
void collector__stop(struct collector *c);
int collector__stats(const struct collector *c, struct collector_stats *ret);
unsigned collector__freq(const struct collector *c);

/* The runtime a process runs, from its executable's name and, for a native
 * executable, what it maps (libpython, libnode, libjvm, libruby, libcoreclr)
 * or, for Go, its executable's .note.go.buildid / .go.buildinfo section. */
enum runtime collector__runtime(const char *proc_root, int32_t pid, const char *exe);

#endif
