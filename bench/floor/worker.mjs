// The floor for the collector benchmark: a Worker that reads the request, hands its body to
// a Durable Object chosen by `?p=`, and the object counts it in SQLite. Any real collector
// does at least this much per request.
export default {
  async fetch(request, env) {
    const key = new URL(request.url).searchParams.get("p") ?? "none";
    const stub = env.COUNTERS.get(env.COUNTERS.idFromName(key));
    return stub.fetch("https://counter/", { method: "POST", body: await request.arrayBuffer() });
  },
};

export class Counter {
  constructor(state) {
    this.sql = state.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS hits (k INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
  }

  async fetch(request) {
    await request.arrayBuffer();
    this.sql.exec("INSERT INTO hits (k, n) VALUES (0, 1) ON CONFLICT (k) DO UPDATE SET n = n + 1");
    return new Response("counted");
  }
}
