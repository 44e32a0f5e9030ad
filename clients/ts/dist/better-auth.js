// Tokens from Better Auth's JWT plugin, for createClient's getToken.
//
// Better Auth signs users in with a session cookie; its `jwt()` plugin turns
// that session into a short-lived JWT (15 minutes by default) at
// GET {baseURL}/api/auth/token, verifiable by anyone through
// {baseURL}/api/auth/jwks. The tasksync server verifies those tokens
// (AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE set to the Better Auth base
// URL), so the client only needs a function that returns a current one:
//
//   import { createClient } from "@tasksync/client";
//   import { betterAuthToken } from "@tasksync/client/better-auth";
//   const client = createClient({
//     url: "https://api.example.com",
//     getToken: betterAuthToken({ baseURL: "https://app.example.com" }),
//   });
//
// The function keeps the token until shortly before it expires, so that
// calling it often (each reconnect, each refresh) costs one request per
// token lifetime, and callers that ask at the same moment share one request.
const defaultRefreshBeforeMs = 60_000;
/** Returns a getToken function that reads Better Auth's /api/auth/token with the session cookie. */
export function betterAuthToken(options) {
    const base = options.baseURL.replace(/\/+$/, "");
    const url = base + (options.path ?? "/api/auth/token");
    const credentials = options.credentials ?? "include";
    const margin = options.refreshBeforeMs ?? defaultRefreshBeforeMs;
    let cached = null;
    let inFlight = null;
    // Bumped by clear() and set(): a request started before them must not
    // overwrite what they decided.
    let generation = 0;
    const remember = (token) => {
        cached = token ? cacheEntry(token, margin) : null;
    };
    const request = async (gen) => {
        const doFetch = options.fetch ?? globalThis.fetch;
        if (typeof doFetch !== "function") {
            throw new Error("betterAuthToken: no fetch available; pass options.fetch");
        }
        const headers = typeof options.headers === "function" ? options.headers() : options.headers;
        let res;
        try {
            res = await doFetch(url, { method: "GET", credentials, headers: { accept: "application/json", ...headers } });
        }
        catch (err) {
            const still = usable(cached);
            if (still)
                return still;
            throw err;
        }
        if (res.status === 401) {
            if (gen === generation)
                cached = null;
            return null;
        }
        if (!res.ok) {
            const still = usable(cached);
            if (still)
                return still;
            throw new Error(`betterAuthToken: GET ${url} answered ${res.status}`);
        }
        const body = await res.json();
        const token = typeof body === "object" && body !== null ? body.token : undefined;
        if (typeof token !== "string" || token === "") {
            throw new Error(`betterAuthToken: GET ${url} returned no token (is the jwt() plugin enabled?)`);
        }
        if (gen === generation)
            remember(token);
        return token;
    };
    const getToken = (() => {
        if (cached && Date.now() < cached.staleAt)
            return Promise.resolve(cached.token);
        if (!inFlight) {
            const p = request(generation).finally(() => {
                if (inFlight === p)
                    inFlight = null;
            });
            inFlight = p;
        }
        return inFlight;
    });
    getToken.clear = () => {
        generation++;
        cached = null;
        inFlight = null;
    };
    getToken.set = (token) => {
        generation++;
        inFlight = null;
        remember(token);
    };
    return getToken;
}
/**
 * The JWT that Better Auth's jwt() plugin puts in the `set-auth-jwt` header
 * of a getSession response (`authClient.getSession({ fetchOptions: {
 * onSuccess: (ctx) => ... } })`), or null when there is none. Across
 * origins the header is only readable when Better Auth's CORS exposes it
 * (Access-Control-Expose-Headers: set-auth-jwt).
 */
export function tokenFromSetAuthJwt(response) {
    const headers = response instanceof Headers ? response : response.headers;
    const v = headers.get("set-auth-jwt");
    return v && v.trim() !== "" ? v.trim() : null;
}
/** When a JWT expires, in milliseconds since the epoch (null: not a JWT, or no exp). */
export function tokenExpiresAt(token) {
    const claims = decodeClaims(token);
    return claims && typeof claims.exp === "number" ? claims.exp * 1000 : null;
}
function cacheEntry(token, margin) {
    const claims = decodeClaims(token);
    if (!claims || typeof claims.exp !== "number") {
        // Nothing says how long it lasts: use it once, ask again next time.
        return { token, expiresAt: Infinity, staleAt: 0 };
    }
    const expiresAt = claims.exp * 1000;
    const issuedAt = typeof claims.iat === "number" ? claims.iat * 1000 : Date.now();
    const lifetime = Math.max(0, expiresAt - issuedAt);
    return { token, expiresAt, staleAt: expiresAt - Math.min(margin, lifetime / 2) };
}
/** The cached token if it has not expired yet (a fallback when Better Auth cannot be reached). */
function usable(c) {
    return c && Date.now() < c.expiresAt - 1000 ? c.token : null;
}
function decodeClaims(token) {
    const part = token.split(".")[1];
    if (!part)
        return null;
    try {
        const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
        const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
        const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
        const claims = JSON.parse(new TextDecoder().decode(bytes));
        return typeof claims === "object" && claims !== null ? claims : null;
    }
    catch {
        return null;
    }
}
