// Prints, for each file argument, what java.util.Properties.load(Reader) reads from it: one JSON
// line per file, {"entries": [[key, value], ...]} in file order (repeated keys kept) or
// {"error": message}. Non-ASCII characters are written as \\uXXXX UTF-16 code units.
// Run as a single source file: `java PropertiesDump.java a.properties b.properties ...`.
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class PropertiesDump {
    // load() stores each pair with put(); recording the calls keeps the order and duplicates.
    static final class Recording extends Properties {
        final List<String[]> entries = new ArrayList<>();

        @Override
        public synchronized Object put(Object key, Object value) {
            entries.add(new String[] {(String) key, (String) value});
            return super.put(key, value);
        }
    }

    static String json(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
                out.append(c);
            } else {
                out.append(String.format("\\u%04x", (int) c));
            }
        }
        return out.append('"').toString();
    }

    public static void main(String[] args) throws IOException {
        for (String name : args) {
            Recording properties = new Recording();
            try (Reader reader = Files.newBufferedReader(Path.of(name), StandardCharsets.UTF_8)) {
                properties.load(reader);
                List<String> pairs = new ArrayList<>();
                for (String[] entry : properties.entries) {
                    pairs.add("[" + json(entry[0]) + ", " + json(entry[1]) + "]");
                }
                System.out.println("{\"entries\": [" + String.join(", ", pairs) + "]}");
            } catch (IllegalArgumentException error) {
                System.out.println("{\"error\": " + json(String.valueOf(error.getMessage())) + "}");
            }
        }
    }
}
