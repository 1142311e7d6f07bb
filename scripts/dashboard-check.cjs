// Opens the dashboard at URL in headless Chromium, waits until its charts have data and
// its alerts and dead letters have appeared (and, given HASH, until a stage shows that plugin version),
// saves a screenshot to SCREENSHOT, and prints what it saw as one JSON line. Exits
// non-zero, saying what it waited for, if that does not happen within two minutes.
// Run through scripts/browser.sh, which installs Chromium and playwright-core.
"use strict";
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const [url, screenshot, hash] = process.argv.slice(2);
const LIMIT = 120_000;

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(url);
    const step = async (what, fn, arg) => {
      try {
        await page.waitForFunction(fn, arg, { timeout: LIMIT, polling: 250 });
      } catch (e) {
        await page.screenshot({ path: screenshot, fullPage: true });
        throw new Error(`waited ${LIMIT / 1000} s for ${what}; page errors: ${errors.join("; ")}`);
      }
    };
    await step("the live feed", () => document.getElementById("conn").textContent === "live");
    await step("four charts with at least two windows per series", () => {
      const charts = document.querySelectorAll("#charts svg");
      return charts.length === 4 && [...charts].every((c) =>
        [...c.querySelectorAll("polyline.series")].some((p) => Number(p.dataset.points) >= 2));
    });
    await step("an alert", () => document.querySelectorAll("#alerts tr.alert").length >= 1);
    await step("a dead letter with its reason", () => document.querySelectorAll("#dead tr.dead").length >= 1);
    if (hash) {
      await step(`a stage running ${hash.slice(0, 12)}`,
        (h) => [...document.querySelectorAll("tr.stage")].some((r) => r.dataset.hash === h), hash);
    }
    // Two more updates, so that the rates (from successive updates) show too.
    await page.waitForTimeout(2500);
    await page.screenshot({ path: screenshot, fullPage: true });
    const seen = await page.evaluate(() => ({
      series: document.querySelectorAll("#charts svg polyline.series").length,
      alerts: [...document.querySelectorAll("#alerts tr.alert")].map((r) => r.cells[1].textContent),
      stages: [...document.querySelectorAll("tr.stage")].map((r) => r.dataset.stage + " " + r.querySelector(".version").textContent),
      changes: document.querySelectorAll("#changes tr.change").length,
      dead: [...document.querySelectorAll("#dead tr.dead")].map((r) => r.cells[0].textContent),
      partitions: [...document.querySelectorAll("tr.partition")].map((r) => [...r.cells].map((c) => c.textContent)),
      rebalances: [...document.querySelectorAll(".rebalances")].map((e) => e.textContent),
    }));
    console.log(JSON.stringify({ ...seen, errors }));
    if (errors.length) process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`dashboard check: ${e.message}`);
  process.exit(1);
});
