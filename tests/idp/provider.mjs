// The OpenID provider ftw's tests sign in against: `oidc-provider` (OpenID Certified),
// started by tests/sso.rs with `node provider.mjs CONFIG.json`. It prints
// `listening ISSUER` once it answers.
//
// CONFIG: { "port", "clients": [{client_id, client_secret, redirect_uris,
// post_logout_redirect_uris}], "accounts": { id: claims } }.
//
// Besides the provider's own routes it has:
// - /interaction/UID: the sign-in page (one field, `login`: an account id). After
//   POST /__test/login?account=ID the next sign-in skips the page and uses that account.
// - POST /__test/forge?mode=MODE: the next token response carries an ID token forged
//   from the real one: `expired`, `stale` (issued an hour ago, not yet expired), `wrong-audience`, `wrong-nonce`, `wrong-issuer`,
//   `other-key` (same kid, another key), `unknown-key` (a kid the JWKS lacks),
//   `alg-none`, `hs256` (signed with the client secret), or `resigned` (the same claims
//   signed again with the real key: the control that proves forging itself is sound).

import fs from 'node:fs';
import http from 'node:http';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;

const real = await jose.generateKeyPair('RS256', { extractable: true });
const other = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(real.privateKey)), kid: 'k1', alg: 'RS256', use: 'sig' };

let forgeMode = null;
let autoAccount = null;

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  })),
  jwks: { keys: [signingJwk] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, ...(config.accounts[id] ?? {}) }),
  }),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ['ftw-test-idp-cookie-key'] },
});

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const sign = (claims, key, kid) =>
  new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(key);

async function forged(token, mode) {
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'resigned': return sign(claims, real.privateKey, 'k1');
    case 'expired': return sign({ ...claims, iat: now - 7200, exp: now - 3600 }, real.privateKey, 'k1');
    case 'stale': return sign({ ...claims, iat: now - 3600 }, real.privateKey, 'k1');
    case 'wrong-audience': return sign({ ...claims, aud: 'some-other-app' }, real.privateKey, 'k1');
    case 'wrong-nonce': return sign({ ...claims, nonce: 'not-the-nonce' }, real.privateKey, 'k1');
    case 'wrong-issuer': return sign({ ...claims, iss: 'http://127.0.0.1:9' }, real.privateKey, 'k1');
    case 'other-key': return sign(claims, other.privateKey, 'k1');
    case 'unknown-key': return sign(claims, other.privateKey, 'k2');
    case 'alg-none': return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    case 'hs256': {
      const secret = new TextEncoder().encode(config.clients[0].client_secret);
      return new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(secret);
    }
    default: throw new Error(`unknown forge mode ${mode}`);
  }
}

// Swaps the ID token of the next token response, when a test asked for it.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token' && ctx.status === 200 && forgeMode && ctx.body?.id_token) {
    const mode = forgeMode;
    forgeMode = null;
    ctx.body = { ...ctx.body, id_token: await forged(ctx.body.id_token, mode) };
  }
});

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  let account = autoAccount;
  if (req.method === 'POST') account = (await readForm(req)).get('login');
  if (!account) {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><title>Test provider</title><h1>Test provider sign-in</h1>
      <form method="post"><input id="login" name="login" autofocus>
      <button id="submit" type="submit">Sign in</button></form>`);
    return;
  }
  const grant = new provider.Grant({ accountId: account, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: account }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

const callback = provider.callback();
http
  .createServer(async (req, res) => {
    try {
      const url = new URL(req.url, issuer);
      if (url.pathname === '/__test/forge' && req.method === 'POST') {
        forgeMode = url.searchParams.get('mode');
        res.end('ok');
      } else if (url.pathname === '/__test/login' && req.method === 'POST') {
        autoAccount = url.searchParams.get('account') || null;
        res.end('ok');
      } else if (url.pathname.startsWith('/interaction/')) {
        await interaction(req, res);
      } else {
        callback(req, res);
      }
    } catch (e) {
      res.statusCode = 500;
      res.end(String(e?.stack ?? e));
    }
  })
  .listen(config.port, '127.0.0.1', () => console.log(`listening ${issuer}`));
