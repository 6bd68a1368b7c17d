// The web console in a real browser: Debian's chromium (never a downloaded one) driven by
// playwright-core against a running `cmg demo`. Run by crates/cmg/tests/browser.rs, which
// starts the demo and passes, in the environment:
//   CMG_SITE_URL          the site's URL (demo.json: site.api_url)
//   CMG_ADMIN_TOKEN_FILE  the admin token file (demo.json: site.admin_token_file)
//   CMG_GATEWAY           the demo gateway's name (demo.json: site.gateway)
//   CMG_SCREENSHOTS       the folder the screenshots are written to
//   CMG_USER_DATA_DIR     a fresh, empty browser profile folder
//   CMG_INSTANCES         the instances' client addresses, comma-separated
//   CMG_CLIENT_CERT/KEY   the demo's good client certificate and key (PEM files)
//   CMG_REVOKED_CERT/KEY  the demo's revoked client certificate and key
// Steps: sign in, see the gateway Ready, open it and its traffic (charts over 24 hours,
// 14 days and one endpoint), run the connection
// analyzer with the good certificate (every step passes) and the revoked one (the
// revocation step fails and says so), create a bulk token
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
const instances = env("CMG_INSTANCES").split(",");
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

  // Traffic over time: four SVG charts (requests, status classes, bytes, latency), each
  // an image labelled by its title and description, with columns for the demo's
  // requests; the time axis in the viewer's zone (console.js); the totals kept.
  const charts = ["chart-requests", "chart-status", "chart-bytes", "chart-latency"];
  const seeCharts = async () => {
    for (const id of charts) {
      const svg = page.locator(`svg#${id}[role="img"][aria-labelledby="${id}-title ${id}-desc"]`);
      await svg.waitFor();
      assert.ok((await svg.locator("rect").count()) >= 1, `${id} has a column`);
    }
    const tick = page.locator("svg#chart-requests text.tick-x.local").first();
    await tick.waitFor({ state: "attached" });
    assert.doesNotMatch(await tick.textContent(), /UTC/, "the time axis is in local time");
    assert.ok((await page.locator("svg#chart-requests g.step title.local").count()) >= 1, "tooltips in local time");
  };
  await Promise.all([page.waitForURL(/traffic\?period=24h/), page.click('a:has-text("24 hours")')]);
  await seeCharts();
  assert.ok((await page.locator("#traffic-totals td", { hasText: "CCM_System" }).count()) >= 1, "CCM_System in the totals");
  await shot("04-traffic-24h");
  await page.click('a:has-text("14 days")');
  await page.waitForURL(/period=14d/);
  await seeCharts();
  await shot("05-traffic-14d");
  await Promise.all([page.waitForURL(/endpoint=/), page.locator("#traffic-totals a", { hasText: "CCM_System" }).first().click()]);
  await seeCharts();
  assert.match(await page.locator("#showing").innerText(), /endpoint .*CCM_System/);
  await shot("05b-traffic-one-endpoint");
  step("traffic");

  // The connection analyzer: the PEM files are chosen in the file inputs (console.js
  // reads them into the text areas), the site runs the analyzer against both instances.
  const analyze = async (cert, key) => {
    await page.goto(`${site}/ui/gateways/${gateway}/analyze`);
    await page.fill('textarea[name="instances"]', instances.join("\n"));
    await page.setInputFiles('input[data-fill="cert_pem"]', cert);
    await page.setInputFiles('input[data-fill="key_pem"]', key);
    await page.waitForFunction(() =>
      document.getElementById("cert_pem").value.includes("BEGIN CERTIFICATE") &&
      document.getElementById("key_pem").value.includes("PRIVATE KEY"));
    await Promise.all([page.waitForLoadState(), page.click('button:has-text("Run the analyzer")')]);
    await page.locator("#analysis").waitFor({ timeout: 60_000 });
    assert.equal(await page.locator("#key_pem").inputValue(), "", "the key is not shown again");
  };
  await analyze(env("CMG_CLIENT_CERT"), env("CMG_CLIENT_KEY"));
  const stepCount = await page.locator("#analysis tbody tr").count();
  assert.ok(stepCount >= 10, `${stepCount} steps`);
  assert.equal(await page.locator("#analysis tr.step-pass").count(), stepCount,
    (await page.locator("#analysis").innerText()));
  assert.match(await page.locator("#analysis-summary").innerText(), /No step failed/);
  await shot("06-analyzer-good");
  step("analyzer: good certificate, every step passed");

  await analyze(env("CMG_REVOKED_CERT"), env("CMG_REVOKED_KEY"));
  const revocation = page.locator("#analysis tbody tr", { hasText: "client certificate: revocation" });
  const cells2 = await revocation.locator("td").allInnerTexts();
  assert.match(cells2[0], /✗ fail/, `revocation row: ${cells2}`);
  assert.match(cells2[2], /revoked/, `revocation row: ${cells2}`);
  assert.match(await page.locator("#analysis-summary").innerText(), /A step failed/);
  // The banner above says it as a failure too (it once stayed green).
  assert.match(await page.locator("p.notice.err[role=alert]").innerText(), /step\(s\) failed/);
  assert.equal(await page.locator("p.notice.ok").count(), 0, "no success banner on a failed run");
  await shot("07-analyzer-revoked");
  step("analyzer: revoked certificate, the revocation step failed");

  await page.click('nav a:has-text("Tokens")');
  await page.fill('input[name="lifetime_minutes"]', "60");
  await Promise.all([page.waitForLoadState(), page.click('button:has-text("Create token")')]);
  const secret = page.locator("#new-token textarea");
  await secret.waitFor();
  assert.ok((await secret.inputValue()).length > 100, "the token is shown");
  const trackingId = await page.locator("#new-token strong code").innerText();
  await shot("08-token-created");
  const tokenRow = page.locator("tbody tr", { hasText: trackingId });
  await Promise.all([page.waitForLoadState(), tokenRow.locator('button:has-text("Block")').click()]);
  await page.locator("tbody tr", { hasText: trackingId }).locator(".badge.blocked").waitFor();
  assert.equal(await page.locator("#new-token").count(), 0, "the token is shown only once");
  await shot("09-token-blocked");
  step(`token ${trackingId} created and blocked`);

  for (const [link, name, text] of [
    ["Roles and URL mappings", "10-roles", "CCM_Proxy_MutualAuth"],
    ["Connection points", "11-connection-points", "cp1"],
    ["Keys", "12-keys", "active"],
    ["Boundary groups", "13-boundary-groups", "Client settings"],
    ["Audit log", "14-audit", "gateway.analyze"],
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
  await shot("15-signed-out");
  step("signed out");

  assert.deepEqual(violations, [], "no CSP violation or script error");
  step("no CSP violation");
} finally {
  await context.close();
}
