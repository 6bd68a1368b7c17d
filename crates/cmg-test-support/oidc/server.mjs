// A real OpenID Connect provider (the npm package `oidc-provider`) on loopback, for the
// cmg tests only (cmg_test_support::oidc). Install: `npm ci --prefix crates/cmg-test-support/oidc`.
//
// - Listens on 127.0.0.1:0 and prints `PORT <n>` as the first line on stdout.
// - Issuer `http://127.0.0.1:<n>`; discovery and JWKS as usual.
// - Clients (client_credentials grant, client_secret_post):
//     `cmg-client-a` / `secret-a`: tokens carry `tid: tenant-a`
//     `cmg-client-b` / `secret-b`: tokens carry `tid: tenant-b`
// - Resource indicators: any `resource=<absolute URI>` becomes the JWT access token's
//   `aud`, signed RS256 with the provider's current key, TTL 300 s.
// - A second issuer, `http://127.0.0.1:<n>/other`, signs with the same keys: its tokens
//   verify against the first issuer's JWKS but carry another `iss`.
// - `POST /admin/rotate`: generates a new RSA key, makes it the signing key and keeps the
//   previous public keys in the JWKS (a normal rollover). Answers `{"kid": "<new kid>"}`.
// - Exits when stdin closes, so a test that dies cannot leave it running.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';

import Provider from 'oidc-provider';

const TENANTS = { 'cmg-client-a': 'tenant-a', 'cmg-client-b': 'tenant-b' };

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `k-${randomUUID()}`, alg: 'RS256', use: 'sig' };
}

function buildProvider(issuer, keys) {
  const provider = new Provider(issuer, {
    clients: Object.keys(TENANTS).map((id) => ({
      client_id: id,
      client_secret: `secret-${id.slice(-1)}`,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_post',
    })),
    jwks: { keys },
    cookies: { keys: ['cmg-token-test-only'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => false,
        getResourceServerInfo: async (_ctx, resourceIndicator) => ({
          scope: 'api',
          audience: resourceIndicator,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: async (_ctx, token) => {
      const tid = TENANTS[token.clientId];
      return tid ? { tid } : undefined;
    },
  });
  return provider;
}

const OTHER = '/other';

let keys = [newSigningKey()];
let current;
let other;

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/admin/rotate') {
    const fresh = newSigningKey();
    keys = [fresh, ...keys];
    current = buildProvider(current.issuer, keys);
    other = buildProvider(other.issuer, keys);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kid: fresh.kid }));
    return;
  }
  if (req.url === OTHER || req.url.startsWith(`${OTHER}/`)) {
    req.url = req.url.slice(OTHER.length) || '/';
    other.callback()(req, res);
    return;
  }
  current.callback()(req, res);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  current = buildProvider(`http://127.0.0.1:${port}`, keys);
  other = buildProvider(`http://127.0.0.1:${port}${OTHER}`, keys);
  process.stdout.write(`PORT ${port}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
