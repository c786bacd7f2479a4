// A WebTorrent WebSocket tracker for the network lab, run inside the lab's wan namespace:
//
//   ip netns exec md-LAB-wan node tests/e2e/lab-tracker.mjs <address> <port>
//
// Prints "listening" once it accepts connections; runs until killed (the lab's `down` kills
// every process in its namespaces).
import TrackerServer from "bittorrent-tracker/server";

const [host, port] = process.argv.slice(2);
const tracker = new TrackerServer({ udp: false, http: false, ws: true, stats: false });
tracker.on("error", (e) => {
  console.error(`tracker: ${e.message}`);
  process.exit(1);
});
tracker.listen(Number(port), host, () => console.log("listening"));
