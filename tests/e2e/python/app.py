"""A Python app with the real Pyroscope SDK (pyroscope-io), for the tests.

The SDK pushes to PYROSCOPE_SERVER_ADDRESS as PYROSCOPE_APPLICATION_NAME,
every UPLOAD_INTERVAL seconds (default 10), with the pid and thread labels.
GIL_ONLY=0 makes it sample threads without the GIL too. For RUN_SECONDS:

  MODE=hash (default)  two threads hash with hashlib.pbkdf2_hmac (OpenSSL, the
                       GIL released), each under its own route tag;
  MODE=threads         a "hasher" thread hashes in hash_password (route
                       /login) while the main thread alternates pure Python
                       (render_report) and file writes (write_audit: os.pwrite,
                       the kernel's write) under route /report;
  MODE=mixed           the main thread alone calls the three in turn;
  MODE=workers         a multiprocessing pool (START_METHOD, default spawn) of
                       2 workers hashes; each worker configures the SDK in
                       its initializer, prints "worker PID" and pushes on its
                       own.

Prints "pid N" first, then "thread NAME IDENT" for each working thread
(threading.get_ident(): what the SDK's thread_id label carries), then shuts
the SDK down (its last push).
"""
import hashlib
import os
import sys
import tempfile
import threading
import time

import pyroscope



def configure():
    pyroscope.configure(
        application_name=os.environ["PYROSCOPE_APPLICATION_NAME"],
        server_address=os.environ["PYROSCOPE_SERVER_ADDRESS"],
        report_pid=True,
        report_thread_id=True,
        report_thread_name=True,
        gil_only=os.environ.get("GIL_ONLY", "1") != "0",
        upload_interval=int(os.environ.get("UPLOAD_INTERVAL", "10")),
        tags={"region": "test"},
    )


end = time.time() + float(os.environ.get("RUN_SECONDS", "12"))


def say(line):
    # one write: print() writes its words apart, and two threads' lines
    # would interleave
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def announce():
    say(f"thread {threading.current_thread().name} {threading.get_ident()}")


def work(route):
    announce()
    with pyroscope.tag_wrapper({"route": route}):
        while time.time() < end:
            hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 2000)


def hash_password():
    return hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 3000)


def hasher():
    announce()
    with pyroscope.tag_wrapper({"route": "/login"}):
        while time.time() < end:
            hash_password()


def render_report():
    n = 0
    for i in range(20000):
        n += len(str(i * 7))
    return n


def write_audit(fd, block):
    for _ in range(8):
        os.pwrite(fd, block, 0)


def report(hashing=False):
    announce()
    fd, path = tempfile.mkstemp(prefix="braid-audit-")
    os.unlink(path)
    block = b"a" * (1 << 20)
    with pyroscope.tag_wrapper({"route": "/report"}):
        while time.time() < end:
            render_report()
            if hashing:
                hash_password()
            write_audit(fd, block)
    os.close(fd)


def worker_init():
    configure()
    say(f"worker {os.getpid()}")


def worker_job(seconds):
    with pyroscope.tag_wrapper({"route": "/batch"}):
        stop = time.time() + seconds
        while time.time() < stop:
            hash_password()
    return os.getpid()


def workers():
    import multiprocessing

    ctx = multiprocessing.get_context(os.environ.get("START_METHOD", "spawn"))
    with ctx.Pool(2, initializer=worker_init) as pool:
        pids = pool.map(worker_job, [max(end - time.time(), 1.0)] * 2, chunksize=1)
        pool.close()
        pool.join()
    print("jobs ran in", " ".join(str(p) for p in sorted(set(pids))), flush=True)


def main():
    print("pid", os.getpid(), flush=True)
    configure()
    mode = os.environ.get("MODE", "hash")
    if mode == "workers":
        workers()
    elif mode == "mixed":
        report(hashing=True)
    else:
        if mode == "threads":
            worker = threading.Thread(target=hasher, name="hasher")
            worker.start()
            report()
        else:
            worker = threading.Thread(target=work, args=("/other",), name="worker-1")
            worker.start()
            work("/login")
        worker.join()
    pyroscope.shutdown()
    sys.exit(0)


# a spawned multiprocessing worker imports this file as __mp_main__
if __name__ == "__main__":
    main()
