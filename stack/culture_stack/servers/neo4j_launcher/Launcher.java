/*
 * Runs Neo4j Community embedded, with the Bolt connector on, in the foreground: the local stack's
 * Neo4j server. Compiled by the stack's install step (javac) into the cache; never committed compiled.
 *
 * Usage: java -cp <this dir>:<neo4j jars>/* Launcher --home=DIR --bolt=HOST:PORT [--pagecache=256m]
 *        [--advertised=HOST:PORT]  (the address clients are told; default: --bolt, which must then not
 *        be 0.0.0.0: a pod listens on every address and advertises its own)
 * The password of the built-in user "neo4j" comes from the environment variable NEO4J_PASSWORD; when it
 * is empty, authentication is disabled.
 */

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.Result;
import org.neo4j.graphdb.Transaction;
import org.neo4j.io.ByteUnit;

public final class Launcher {
    private Launcher() {}

    public static void main(String[] args) {
        try {
            run(parse(args));
        } catch (Throwable failure) {
            // Neo4j's non-daemon threads could keep a half-started JVM alive: say why, then exit for sure
            failure.printStackTrace();
            System.err.println("neo4j launcher: failed to start: " + failure);
            System.exit(1);
        }
    }

    private static void run(Map<String, String> opts) throws InterruptedException {
        Path home = Path.of(require(opts, "home")).toAbsolutePath();
        SocketAddress bolt = parseAddress(require(opts, "bolt"));
        SocketAddress advertised = parseAddress(opts.getOrDefault("advertised", require(opts, "bolt")));
        long pagecache = parseBytes(opts.getOrDefault("pagecache", "256m"));
        String password = System.getenv().getOrDefault("NEO4J_PASSWORD", "");
        boolean auth = !password.isEmpty();

        long t0 = System.nanoTime();
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, bolt)
                .setConfig(BoltConnector.advertised_address, advertised)
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .setConfig(GraphDatabaseSettings.pagecache_memory, pagecache)
                .setConfig(GraphDatabaseSettings.auth_enabled, auth)
                // clients poll with the final password while start-up is still setting it: no lock-outs
                .setConfig(GraphDatabaseSettings.auth_max_failed_attempts, 0)
                .build();

        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM (culture stack down) runs this hook: a clean shutdown keeps the store consistent
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("neo4j launcher: shutting down");
            try {
                dbms.shutdown();
            } finally {
                System.out.println("neo4j launcher: stopped");
                System.out.flush();
                stopped.countDown();
            }
        }, "neo4j-shutdown"));

        if (auth) {
            setInitialPassword(dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME), password);
        }
        GraphDatabaseService db = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        String version;
        try (Transaction tx = db.beginTx();
             Result r = tx.execute("CALL dbms.components() YIELD versions, edition "
                     + "RETURN versions[0] + ' ' + edition AS v")) {
            version = (String) r.next().get("v");
        }
        System.out.printf("neo4j launcher: started Neo4j %s, bolt://%s, auth %s, home %s (%.1fs); "
                        + "Neo4j's own log: %s%n",
                version, bolt, auth ? "enabled (user neo4j)" : "disabled", home,
                (System.nanoTime() - t0) / 1e9, home.resolve("logs").resolve("debug.log"));
        System.out.flush();
        stopped.await();
    }

    /** Give user neo4j the dev password once (a new store asks for a change of "neo4j" first). */
    private static void setInitialPassword(GraphDatabaseService system, String password) {
        boolean changeRequired;
        try (Transaction tx = system.beginTx();
             Result r = tx.execute("SHOW USERS YIELD user, passwordChangeRequired "
                     + "WHERE user = 'neo4j' RETURN passwordChangeRequired")) {
            changeRequired = r.hasNext() && Boolean.TRUE.equals(r.next().get("passwordChangeRequired"));
        }
        if (changeRequired) {
            system.executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
            System.out.println("neo4j launcher: set the password of user neo4j");
        }
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> opts = new HashMap<>();
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (!arg.startsWith("--") || eq < 0) {
                usage("unexpected argument " + arg);
            }
            opts.put(arg.substring(2, eq), arg.substring(eq + 1));
        }
        return opts;
    }

    private static String require(Map<String, String> opts, String key) {
        String value = opts.get(key);
        if (value == null || value.isEmpty()) {
            usage("missing --" + key + "=...");
        }
        return value;
    }

    private static SocketAddress parseAddress(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon < 0) {
            usage("--bolt must be HOST:PORT, got " + hostPort);
        }
        return new SocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }

    private static long parseBytes(String size) {
        String s = size.trim().toLowerCase();
        long unit = 1;
        if (s.endsWith("g")) {
            unit = ByteUnit.gibiBytes(1);
        } else if (s.endsWith("m")) {
            unit = ByteUnit.mebiBytes(1);
        } else if (s.endsWith("k")) {
            unit = ByteUnit.kibiBytes(1);
        }
        if (unit != 1) {
            s = s.substring(0, s.length() - 1);
        }
        return Long.parseLong(s) * unit;
    }

    private static void usage(String problem) {
        System.err.println("neo4j launcher: " + problem);
        System.err.println("usage: Launcher --home=DIR --bolt=HOST:PORT [--pagecache=256m] [--advertised=HOST:PORT]"
                + " (password of user neo4j from $NEO4J_PASSWORD; empty disables auth)");
        System.exit(2);
    }
}
