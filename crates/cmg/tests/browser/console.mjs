// The web console in a real browser: Debian's chromium (never a downloaded one) driven by
// playwright-core against a running `cmg demo`. Run by crates/cmg/tests/browser.rs, which
// starts the demo and passes, in the environment:
//   CMG_SITE_URL          the site's URL (demo.json: site.api_url)
//   CMG_ADMIN_TOKEN_FILE  the admin token file (demo.json: site.admin_token_file)
//   CMG_GATEWAY           the demo gateway's name (demo.json: site.gateway)
//   CMG_SCREENSHOTS       the folder the screenshots are written to
//   CMG_USER_DATA_DIR     a fresh, empty browser profile folder
// Steps: sign in, see the gateway Ready, open it and its traffic, create a bulk token
// and block it, look at every other page, sign out. Each step prints `ok <step>`; a
// failure throws (exit status 1). Any Content-Security-Policy violation fails the run.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const site = env("CMG_SITE_URL").replace(/\/$/, "");
const token = readFileSync(env("CMG_ADMIN_TOKEN_FILE"), "utf8").trim();
const gateway = env("CMG_GATEWAY");
const shots = env("CMG_SCREENSHOTS");
mkdirSync(shots, { recursive: true });

const context = await chromium.launchPersistentContext(env("CMG_USER_DATA_DIR"), {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  // The site's certificate is issued by the site's own CA.
  ignoreHTTPSErrors: true,
  viewport: { width: 1400, height: 900 },
  timezoneId: "Europe/Paris",
  locale: "en-GB",
});
const violations = [];
const page = context.pages()[0] ?? (await context.newPage());
page.on("console", (m) => {
  if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
});
page.on("pageerror", (e) => violations.push(`page error: ${e.message}`));
page.setDefaultTimeout(30_000);

const shot = async (name) => {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  console.log(`screenshot ${join(shots, `${name}.png`)}`);
};
const step = (name) => console.log(`ok ${name}`);

try {
  // Signed out, the console sends the browser to the sign-in form.
  await page.goto(`${site}/ui/gateways`);
  assert.match(page.url(), /\/ui\/sign-in$/);
  await shot("01-sign-in");
  await page.fill('input[name="name"]', "browser-test");
  await page.fill('input[name="token"]', token);
  await Promise.all([page.waitForURL(/\/ui\/gateways$/), page.click('button:has-text("Sign in")')]);
  step("signed in");

  // The gateway is Ready (the table refreshes itself; wait for the poll if needed).
  const row = page.locator("#gateways tbody tr", { hasText: gateway });
  await row.locator(".status", { hasText: "Ready" }).waitFor();
  const cells = await row.locator("td").allInnerTexts();
  assert.match(cells[3], /^2 \/ 2$/, `instances up: ${cells[3]}`);
  // Times were turned into the viewer's local time by the vendored script.
  await page.locator("time.local").first().waitFor();
  await shot("02-gateways");
  step("gateway Ready");

  await Promise.all([page.waitForURL(new RegExp(`/ui/gateways/${gateway}$`)), row.locator(`a:has-text("${gateway}")`).click()]);
  await page.locator("td .status", { hasText: "connected" }).first().waitFor();
  await shot("03-gateway");
  step("gateway detail");

  await Promise.all([page.waitForURL(/traffic\?period=24h/), page.click('a:has-text("24 hours")')]);
  const chart = page.locator('svg[aria-label="Requests by status class and bytes out per endpoint"]');
  await chart.waitFor();
  assert.ok((await chart.locator("text", { hasText: "CCM_System" }).count()) >= 1, "CCM_System in the chart");
  await shot("04-traffic-24h");
  await page.click('a:has-text("14 days")');
  await page.waitForURL(/period=14d/);
  await shot("05-traffic-14d");
  step("traffic");

  await page.click('nav a:has-text("Tokens")');
  await page.fill('input[name="lifetime_minutes"]', "60");
  await Promise.all([page.waitForLoadState(), page.click('button:has-text("Create token")')]);
  const secret = page.locator("#new-token textarea");
  await secret.waitFor();
  assert.ok((await secret.inputValue()).length > 100, "the token is shown");
  const trackingId = await page.locator("#new-token strong code").innerText();
  await shot("06-token-created");
  const tokenRow = page.locator("tbody tr", { hasText: trackingId });
  await Promise.all([page.waitForLoadState(), tokenRow.locator('button:has-text("Block")').click()]);
  await page.locator("tbody tr", { hasText: trackingId }).locator(".badge.blocked").waitFor();
  assert.equal(await page.locator("#new-token").count(), 0, "the token is shown only once");
  await shot("07-token-blocked");
  step(`token ${trackingId} created and blocked`);

  for (const [link, name, text] of [
    ["Roles and URL mappings", "08-roles", "CCM_Proxy_MutualAuth"],
    ["Connection points", "09-connection-points", "cp1"],
    ["Keys", "10-keys", "active"],
    ["Boundary groups", "11-boundary-groups", "Client settings"],
    ["Audit log", "12-audit", "token.block"],
  ]) {
    await page.click(`nav a:has-text("${link}")`);
    await page.locator("main", { hasText: text }).waitFor();
    await shot(name);
    step(link);
  }
  assert.ok((await page.locator("td", { hasText: "web:browser-test" }).count()) >= 2, "audited as web:browser-test");

  await Promise.all([page.waitForURL(/\/ui\/sign-in$/), page.click('button:has-text("Sign out")')]);
  await page.goto(`${site}/ui/gateways`);
  assert.match(page.url(), /\/ui\/sign-in$/, "signed out for good");
  await shot("13-signed-out");
  step("signed out");

  assert.deepEqual(violations, [], "no CSP violation or script error");
  step("no CSP violation");
} finally {
  await context.close();
}
