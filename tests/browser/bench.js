/*
 * bench.js - time to first listing of a 10,000-entry folder in the web client
 * (headless Debian chromium). Started by `run.py --bench`, which stores the
 * folder /big of alice first:
 *
 *   node bench.js <base URL> <runs>
 *
 * Prints, per run: ms from navigation to the first rows painted (page load,
 * session check and the first page of 1000 entries), the same measured by the
 * page from the listing's first request, and ms until all 10,000 are loaded.
 */
"use strict";
const puppeteer = require("puppeteer-core");
const [base, runsArg] = process.argv.slice(2);

(async () => {
	const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
		headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
	const page = await browser.newPage();
	await page.goto(base + "/", { waitUntil: "load" });
	await page.waitForSelector("#login:not([hidden])");
	await page.type("#login-user", "alice");
	await page.type("#login-password", "pw-alice");
	await page.click("#login-submit");
	await page.waitForSelector("#list[data-loaded='1']");
	const res = [];
	for (let i = 0; i < Number(runsArg || 5); i++) {
		await page.goto("about:blank");
		const t0 = Date.now();
		await page.goto(base + "/#/files/big", { waitUntil: "domcontentloaded" });
		await page.waitForSelector(".spacer .row", { polling: "mutation" });
		const first = Date.now() - t0;
		await page.waitForSelector("#list[data-loaded='1']", { polling: "mutation" });
		const all = Date.now() - t0;
		const inPage = await page.evaluate(() => window.firstListingMs);
		const n = await page.$eval("#list-info", (e) => e.textContent);
		res.push(first);
		console.log(`run ${i + 1}: first rows ${first} ms after navigation (listing request to rows: ${inPage.toFixed(0)} ms), all loaded ${all} ms (${n})`);
	}
	/* opening the folder inside the running client (a click on its name) */
	const inApp = [];
	for (let i = 0; i < Number(runsArg || 5); i++) {
		await page.goto(base + "/#/files/", { waitUntil: "load" });
		await page.waitForSelector("#list[data-loaded='1']");
		const t0 = Date.now();
		await page.click(".spacer .row[data-name='big'] a.dir");
		await page.waitForSelector(".spacer .row[data-name^='file-']", { polling: "mutation" });
		const first = Date.now() - t0;
		await page.waitForSelector("#list[data-loaded='1']", { polling: "mutation" });
		inApp.push(first);
		console.log(`in-app run ${i + 1}: first rows ${first} ms after the click, all loaded ${Date.now() - t0} ms`);
	}
	res.sort((a, b) => a - b);
	inApp.sort((a, b) => a - b);
	console.log(`median time to first listing: ${inApp[Math.floor(inApp.length / 2)]} ms from a click in the client, ` +
		`${res[Math.floor(res.length / 2)]} ms from loading the page`);
	await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
