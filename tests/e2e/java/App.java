// A Java app with the real Pyroscope Java agent (io.pyroscope:agent, attached
// with -javaagent), for the tests. For RUN_SECONDS (default 12) its main
// thread loops over three methods:
//   compress   java.util.zip.Deflater on 256 KiB of text: zlib's deflate, JNI;
//   writeLog   1 MiB to a temporary file: the kernel's write;
//   sortWork   sorting and hashing Java objects: JIT-compiled Java only.
// Prints "pid N" first. Run as a single-file program: java App.java.
import java.io.File;
import java.io.FileOutputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.zip.Deflater;

public class App {
    static byte[] text = new byte[256 * 1024];
    static byte[] out = new byte[512 * 1024];
    static byte[] block = new byte[1 << 20];

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

    static void writeLog(FileOutputStream f) throws Exception {
        f.getChannel().position(0);
        f.write(block);
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

    public static void main(String[] args) throws Exception {
        System.out.println("pid " + ProcessHandle.current().pid());
        System.out.flush();
        for (int i = 0; i < text.length; i++) {
            text[i] = (byte) "the quick brown fox jumps over the lazy dog ".charAt((i * 7) % 44);
        }
        File tmp = File.createTempFile("braid-java-", ".log");
        tmp.deleteOnExit();
        long end = System.currentTimeMillis()
                + (long) (1000 * Double.parseDouble(System.getenv().getOrDefault("RUN_SECONDS", "12")));
        long sink = 0;
        try (FileOutputStream f = new FileOutputStream(tmp)) {
            while (System.currentTimeMillis() < end) {
                sink += compress();
                writeLog(f);
                sink += sortWork();
            }
        }
        System.out.println("done " + (sink & 1));
    }
}
