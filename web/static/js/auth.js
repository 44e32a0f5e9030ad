// The access token: where it comes from, where it is kept, what it says.
//
// Sources: the URL fragment (/#token=..., which never reaches the server or
// its logs; removed from the address bar at once) or a token pasted into the
// sign-in form. Neither can be renewed by the page itself, so such a
// session shows when it expires and asks for a new token (which is then
// handed to the live socket with auth.refresh). A source that can renew
// (an identity provider's session, e.g. Better Auth's GET /api/auth/token)
// plugs in as TokenSource.refresh.
//
// The token lives in sessionStorage: it survives reloads of this tab and
// is gone when the tab closes; other tabs sign in on their own.

const KEY = 'tasksync.token';

/** Decodes a JWT's payload without verifying it (the server verifies). */
export function decodeToken(token) {
  const parts = String(token || '').trim().split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/** The user id a token names: sub, else Better Auth's id claim. */
export function tokenUser(claims) {
  if (!claims) return '';
  return String(claims.sub || claims.id || '');
}

/** Milliseconds since the epoch at which the token expires, or Infinity. */
export function tokenExpiry(claims) {
  return claims && typeof claims.exp === 'number' ? claims.exp * 1000 : Infinity;
}

export class TokenSource {
  constructor(token, origin) {
    this.token = token;
    this.origin = origin; // 'fragment' | 'pasted' | 'stored'
    this.claims = decodeToken(token);
  }

  get userId() { return tokenUser(this.claims); }
  get expiresAt() { return tokenExpiry(this.claims); }
  expired(skewMs = 0) { return Date.now() + skewMs >= this.expiresAt; }

  /** Whether the page can get a fresh token by itself. */
  get canRefresh() { return false; }

  /** Resolves to a fresh token; only when canRefresh. */
  async refresh() { throw new Error('this token cannot be renewed by the page'); }

  replace(token) {
    this.token = token;
    this.claims = decodeToken(token);
    save(token);
  }
}

/** Checks a pasted token: a readable JWT that names a user and has not expired. */
export function checkToken(token) {
  const claims = decodeToken(token);
  if (!claims) return 'This does not look like an access token (a JWT: three dot-separated parts).';
  if (!tokenUser(claims)) return 'This token names no user (no sub claim).';
  if (Date.now() >= tokenExpiry(claims)) return 'This token has expired. Get a new one.';
  return '';
}

/** Takes a token from the fragment (and removes it from the address bar), else from storage. */
export function initialToken() {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromHash = params.get('token');
  if (fromHash) {
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
    save(fromHash);
    return new TokenSource(fromHash, 'fragment');
  }
  const stored = sessionStorage.getItem(KEY);
  return stored ? new TokenSource(stored, 'stored') : null;
}

export function save(token) {
  sessionStorage.setItem(KEY, token);
}

export function forget() {
  sessionStorage.removeItem(KEY);
}
