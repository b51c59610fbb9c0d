// Drives the status page of a running `weir run` in Debian's chromium
// (playwright-core, no bundled browser). Arguments come from the
// environment: WEIR_URL, WEIR_READ, WEIR_ADMIN, WEIR_SHOTS (a directory for
// screenshots). Prints one line per check; exits non-zero on the first
// failure.
import { chromium } from "playwright-core";

const url = process.env.WEIR_URL;
const shots = process.env.WEIR_SHOTS;
const fail = (what) => { console.error("FAILED: " + what); process.exit(1); };

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox"],
});
try {
  const page = await browser.newPage();
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(url)) external.push(r.url()); });
  await page.goto(url);
  if ((await page.title()) !== "Weir pipeline") fail("the page title");

  // A wrong token: a clear message.
  await page.fill("#token", "not-the-right-token-at-all");
  await page.click("#connect");
  await page.waitForFunction(() => document.querySelector("#error").textContent.includes("refused"), null, { timeout: 10000 });
  console.log("wrong token: " + (await page.textContent("#error")));
  await page.screenshot({ path: shots + "/status-page-wrong-token.png", fullPage: true });

  // The read-only token: the stages, and numbers that move with the load.
  await page.fill("#token", process.env.WEIR_READ);
  await page.click("#connect");
  await page.waitForFunction(() => document.querySelector("#state").textContent === "streaming", null, { timeout: 20000 });
  if ((await page.textContent("#error")) !== "") fail("an error shown with the right token");
  const stages = await page.textContent("#stages");
  for (const part of ["source: postgres", "router", "sink: files"]) {
    if (!stages.includes(part)) fail("stage " + part + " in: " + stages);
  }
  console.log("stages: " + stages);
  const first = Number(await page.textContent("#events-out"));
  await page.waitForFunction((n) => Number(document.querySelector("#events-out").textContent) > n + 20, first, { timeout: 20000 });
  await page.waitForFunction(() => Number(document.querySelector("#throughput").textContent) > 0, null, { timeout: 20000 });
  const lag = await page.textContent("#lag");
  if (!(Number(lag) >= 0)) fail("the lag: " + lag);
  console.log("written: " + first + " -> " + (await page.textContent("#events-out")) +
    ", throughput " + (await page.textContent("#throughput")) + "/s, lag " + lag + " s");
  await page.screenshot({ path: shots + "/status-page-streaming.png", fullPage: true });

  // Paused through the admin API: the page says so.
  const admin = (path) => fetch(url + path, { method: "POST", headers: { Authorization: "Bearer " + process.env.WEIR_ADMIN } });
  if (!(await admin("/v1/pause")).ok) fail("pause");
  await page.waitForFunction(() => document.querySelector("#state").textContent === "paused", null, { timeout: 10000 });
  console.log("paused: " + (await page.textContent("#state")));
  await page.screenshot({ path: shots + "/status-page-paused.png", fullPage: true });
  if (!(await admin("/v1/resume")).ok) fail("resume");
  await page.waitForFunction(() => document.querySelector("#state").textContent === "streaming", null, { timeout: 10000 });

  // The token stays in the tab: a reload needs no new entry.
  await page.reload();
  await page.waitForFunction(() => document.querySelector("#state").textContent === "streaming", null, { timeout: 10000 });
  if (external.length) fail("requests outside weir: " + external.join(", "));
  console.log("OK");
} finally {
  await browser.close();
}
