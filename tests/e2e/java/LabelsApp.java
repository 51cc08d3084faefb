// A Java app for the JFR fixtures (tests/tools/jfr_capture.sh,
// tests/data/jfr): every kind of event the Pyroscope Java agent
// (io.pyroscope:agent, attached with -javaagent) can record, some of it under
// the agent's context labels. For RUN_SECONDS (default 12):
//   main         loops over compress (java.util.zip.Deflater on 256 KiB of
//                text: zlib, JNI), writeLog (1 MiB to a temporary file: the
//                kernel's write), sortWork (sorting and hashing strings: Java
//                only) and allocWork (small arrays in TLABs, 2 MiB ones outside
//                them: allocation events);
//   monitor-1    and monitor-2 take turns on one monitor, each holding it
//                for 12 ms (sleeping inside synchronized): monitor contention
//                (JavaMonitorEnter events, the waits long enough for a 10 ms
//                threshold);
//   rlock-1      and rlock-2 the same on a ReentrantLock: its waiters park
//                (ThreadPark events; async-profiler records a park only when
//                its blocker is such a lock);
//   parker       LockSupport.parkNanos(20 ms) in a loop, no blocker (wall
//                clock samples; ThreadPark events with the JDK's recorder).
// With LABELS=1 (the default) each piece of work runs inside
// Pyroscope.LabelsWrapper.run with labels {op=compress|write|sort|alloc|lock|
// rlock|park}; every other sortWork runs as {op=sort, phase=nested} inside
// {op=outer}, a nested wrapper. LABELS=0 runs it all bare, for pushes without
// a labels part. Prints "pid N" first. A single-file program, compiled against
// the agent's jar for the labels API:
//   java -javaagent:agent.jar -cp agent.jar LabelsApp.java
import io.pyroscope.labels.v2.LabelsSet;
import io.pyroscope.labels.v2.Pyroscope;
import java.io.File;
import java.io.FileOutputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.zip.Deflater;

public class LabelsApp {
    static final boolean LABELS = !"0".equals(System.getenv().getOrDefault("LABELS", "1"));
    static final Object MONITOR = new Object();
    static final ReentrantLock LOCK = new ReentrantLock();
    static volatile boolean running = true;
    static volatile Object keep;

    static byte[] text = new byte[256 * 1024];
    static byte[] out = new byte[512 * 1024];
    static byte[] block = new byte[1 << 20];

    static <T> T labeled(Callable<T> work, String... kv) throws Exception {
        if (!LABELS) {
            return work.call();
        }
        return Pyroscope.LabelsWrapper.run(new LabelsSet(kv), work);
    }

    static int compress() {
        Deflater d = new Deflater(6);
        d.setInput(text);
        d.finish();
        int n = 0;
        while (!d.finished()) {
            n += d.deflate(out);
        }
        d.end();
        return n;
    }

    static int writeLog(FileOutputStream f) throws Exception {
        f.getChannel().position(0);
        f.write(block);
        return block.length;
    }

    static long sortWork() {
        List<String> l = new ArrayList<>();
        for (int i = 0; i < 20000; i++) {
            l.add(Integer.toHexString(i * 7919));
        }
        Collections.sort(l);
        long h = 0;
        for (String s : l) {
            h = h * 31 + s.hashCode();
        }
        return h;
    }

    static long allocWork() {
        long n = 0;
        Object[] small = new Object[4096];
        for (int i = 0; i < small.length; i++) {
            small[i] = new byte[64 + (i & 255)];
            n += ((byte[]) small[i]).length;
        }
        for (int i = 0; i < 4; i++) {
            byte[] big = new byte[2 << 20];
            big[i] = 1;
            keep = big;
            n += big.length;
        }
        keep = small;
        return n;
    }

    static void hold() {
        try {
            Thread.sleep(12);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void contendMonitor() {
        while (running) {
            synchronized (MONITOR) {
                hold();
            }
        }
    }

    static void contendLock() {
        while (running) {
            LOCK.lock();
            try {
                hold();
            } finally {
                LOCK.unlock();
            }
        }
    }

    static void park() {
        while (running) {
            LockSupport.parkNanos(20_000_000L);
        }
    }

    static Thread start(String name, Runnable body, String label) {
        Thread t = new Thread(() -> {
            try {
                labeled(() -> {
                    body.run();
                    return null;
                }, "op", label);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }, name);
        t.setDaemon(true);
        t.start();
        return t;
    }

    public static void main(String[] args) throws Exception {
        System.out.println("pid " + ProcessHandle.current().pid());
        System.out.flush();
        for (int i = 0; i < text.length; i++) {
            text[i] = (byte) "the quick brown fox jumps over the lazy dog ".charAt((i * 7) % 44);
        }
        List<Thread> threads = new ArrayList<>();
        threads.add(start("monitor-1", LabelsApp::contendMonitor, "lock"));
        threads.add(start("monitor-2", LabelsApp::contendMonitor, "lock"));
        threads.add(start("rlock-1", LabelsApp::contendLock, "rlock"));
        threads.add(start("rlock-2", LabelsApp::contendLock, "rlock"));
        threads.add(start("parker", LabelsApp::park, "park"));

        File tmp = File.createTempFile("braid-java-", ".log");
        tmp.deleteOnExit();
        long end = System.currentTimeMillis()
                + (long) (1000 * Double.parseDouble(System.getenv().getOrDefault("RUN_SECONDS", "12")));
        long sink = 0;
        int round = 0;
        try (FileOutputStream f = new FileOutputStream(tmp)) {
            while (System.currentTimeMillis() < end) {
                sink += labeled(LabelsApp::compress, "op", "compress");
                sink += labeled(() -> writeLog(f), "op", "write");
                if ((round++ & 1) == 0) {
                    sink += labeled(LabelsApp::sortWork, "op", "sort");
                } else {
                    sink += labeled(() -> labeled(LabelsApp::sortWork, "op", "sort", "phase", "nested"),
                            "op", "outer");
                }
                sink += labeled(LabelsApp::allocWork, "op", "alloc");
            }
        }
        running = false;
        for (Thread t : threads) {
            t.join(1000);
        }
        System.out.println("done " + (sink & 1));
    }
}
