/*
 * bench-upload.js - a 1 GiB upload through the web client against curl to the
 * same server in the same run. Started by `run.py --bench-upload`:
 *
 *   node bench-upload.js <base URL> <file>
 *
 * curl: one PUT of the file (no hashing on the client). The page: SHA-256 in
 * JS, the instant-upload question (404: new content), then the handle writes
 * in 8 MiB pieces and the close.
 */
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const puppeteer = require("puppeteer-core");
const [base, file, file2] = process.argv.slice(2);
const size = fs.statSync(file).size;

(async () => {
	let t0 = Date.now();
	execFileSync("curl", ["-fsS", "-o", "/dev/null", "-u", "alice:pw-alice", "-T", file, base + "/api/v1/fs/curl.bin"]);
	const curlMs = Date.now() - t0;
	const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
		headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
	const page = await browser.newPage();
	await page.goto(base + "/", { waitUntil: "load" });
	await page.waitForSelector("#login:not([hidden])");
	await page.type("#login-user", "alice");
	await page.type("#login-password", "pw-alice");
	await page.click("#login-submit");
	await page.waitForSelector("#list[data-loaded='1']");
	/* the page uploads other bytes than curl did (run.py makes two files),
	 * so it is not instant */
	const input = await page.$("#pick-files");
	t0 = Date.now();
	await input.uploadFile(file2);
	let hashedAt = 0;
	const li = "#up-list li";
	await page.waitForSelector(li);
	for (;;) {
		const st = await page.$eval(li, (l) => l.dataset.state);
		if (!hashedAt && st !== "hashing" && st !== "starting" && st !== "queued")
			hashedAt = Date.now() - t0;
		if (["done", "instant", "error"].includes(st)) {
			console.log("state: " + st);
			break;
		}
		await new Promise((r) => setTimeout(r, 50));
	}
	const pageMs = Date.now() - t0;
	const mb = (ms) => (size / 1048576 / (ms / 1000)).toFixed(1);
	console.log(`curl PUT: ${curlMs} ms (${mb(curlMs)} MiB/s)`);
	console.log(`web client: ${pageMs} ms (${mb(pageMs)} MiB/s), of which hashing ${hashedAt} ms (${mb(hashedAt)} MiB/s), sending ${pageMs - hashedAt} ms (${mb(pageMs - hashedAt)} MiB/s)`);
	console.log(`ratio web/curl: ${(curlMs / pageMs).toFixed(2)} (sending alone: ${(curlMs / (pageMs - hashedAt)).toFixed(2)})`);
	await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
