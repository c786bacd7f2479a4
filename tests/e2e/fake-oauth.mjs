// A fake GitHub for the browser test, on 127.0.0.1: the authorize page approves at once,
// the token endpoint checks the client secret, PKCE (S256) and single use of each code, and
// the API answers /user and /user/emails. (The Rust tests have a fuller fake with both
// provider shapes and failure modes: tests/common/fake_oauth.rs.)
import { createServer } from "node:http";
import { createHash } from "node:crypto";
import { freePort } from "./harness.mjs";

export const CLIENT_ID = "e2e-client";
export const CLIENT_SECRET = "e2e-secret";

export async function startFakeGithub(person = { id: 4242, name: "Ada Lovelace", email: "ada@example.com" }) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const codes = new Map();
  const tokens = new Map();
  let next = 1;
  const json = (res, status, body) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, base);
    if (req.method === "GET" && url.pathname === "/authorize") {
      const q = url.searchParams;
      if (q.get("client_id") !== CLIENT_ID || q.get("code_challenge_method") !== "S256") {
        return json(res, 400, { error: "invalid_request" });
      }
      const code = `code-${next++}`;
      codes.set(code, { challenge: q.get("code_challenge"), redirect: q.get("redirect_uri"), used: false });
      const back = new URL(q.get("redirect_uri"));
      back.searchParams.set("code", code);
      back.searchParams.set("state", q.get("state"));
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (req.method === "POST" && url.pathname === "/token") {
      let body = "";
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      const basic = "Basic " + Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString("base64");
      if (req.headers.authorization !== basic) return json(res, 401, { error: "invalid_client" });
      const grant = codes.get(form.get("code"));
      const challenge = createHash("sha256").update(form.get("code_verifier") || "").digest("base64url");
      if (!grant || grant.used || grant.challenge !== challenge || grant.redirect !== form.get("redirect_uri")) {
        return json(res, 200, { error: "bad_verification_code" });
      }
      grant.used = true;
      const token = `token-${next++}`;
      tokens.set(token, person);
      return json(res, 200, { access_token: token, token_type: "bearer", scope: "read:user user:email" });
    }
    const who = tokens.get((req.headers.authorization || "").replace(/^Bearer /, ""));
    if (!who) return json(res, 401, { message: "Bad credentials" });
    if (url.pathname === "/api/user") {
      return json(res, 200, { id: who.id, login: "ada", name: who.name, avatar_url: null });
    }
    if (url.pathname === "/api/user/emails") {
      return json(res, 200, [{ email: who.email, primary: true, verified: true }]);
    }
    json(res, 404, { message: "Not Found" });
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return {
    env: {
      MESHDROP_GITHUB_CLIENT_ID: CLIENT_ID,
      MESHDROP_GITHUB_CLIENT_SECRET: CLIENT_SECRET,
      MESHDROP_GITHUB_AUTH_URL: `${base}/authorize`,
      MESHDROP_GITHUB_TOKEN_URL: `${base}/token`,
      MESHDROP_GITHUB_API_URL: `${base}/api`,
    },
    close: () => new Promise((r) => server.close(r)),
  };
}
