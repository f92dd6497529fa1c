/*
 * e2e.js - the web client end to end in Debian's headless chromium, driven by
 * puppeteer-core (pinned in package-lock.json; no browser is downloaded).
 * Started by run.py, which runs the daemon and makes the users:
 *
 *   node e2e.js <base URL> <work dir> <artifacts dir>
 *
 * Each step prints "ok <step>"; the first failure prints "FAIL <step>: why",
 * saves a screenshot and exits 1. Screenshots of every page go to the
 * artifacts dir.
 */
"use strict";
const fs = require("fs");
const path = require("path");
const http = require("http");
const crypto = require("crypto");
const puppeteer = require("puppeteer-core");

const [base, work, arts] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const BIG = 50 << 20;
let page, step = "start";
const shot = async (name) => page.screenshot({ path: path.join(arts, name + ".png"), fullPage: true });

function assert(c, msg) {
	if (!c)
		throw new Error(msg);
}

function sha(buf) {
	return crypto.createHash("sha256").update(buf).digest("hex");
}

/* The REST API with Basic credentials, from outside the browser. */
async function rest(method, p, user, body, headers) {
	const h = Object.assign({ Authorization: "Basic " + Buffer.from(user).toString("base64") }, headers || {});
	const r = await fetch(base + p, { method, headers: h, body });
	const buf = Buffer.from(await r.arrayBuffer());
	return { status: r.status, buf, json: () => JSON.parse(buf.toString()) };
}

async function login(user, pw) {
	await page.goto(base + "/", { waitUntil: "load" });
	await page.waitForSelector("body[data-ready='1']");
	await page.waitForSelector("#login:not([hidden])");
	await page.type("#login-user", user);
	await page.type("#login-password", pw);
	await page.click("#login-submit");
	await page.waitForSelector("#list[data-loaded='1']", { timeout: 15000 });
}

async function logout() {
	await page.click("#logout");
	await page.waitForSelector("#login:not([hidden])");
}

const rowSel = (name) => `.spacer .row[data-name=${JSON.stringify(name)}]`;

async function waitRow(name, timeout) {
	await page.waitForSelector(rowSel(name), { timeout: timeout || 15000 });
}

/* Answer the next prompt/confirm with text (or accept). */
const answers = [];
function answerNext(text) {
	answers.push(text);
}
function onDialog(d) {
	const a = answers.shift();
	console.log(`   dialog ${d.type()} "${d.message()}" -> ${a === undefined ? "accept" : JSON.stringify(a)}`);
	d.accept(a);
}

async function rowButton(name, cls) {
	await waitRow(name);
	await page.$eval(rowSel(name) + " ." + cls, (b) => b.click());
}

/* Put the files at paths into a helper <input type=file> of the page, as
 * real File objects the page can read. */
async function filesIntoPage(paths) {
	await page.evaluate(() => {
		let i = document.getElementById("dnd-src");
		if (!i) {
			i = document.createElement("input");
			i.type = "file";
			i.multiple = true;
			i.id = "dnd-src";
			i.hidden = true;
			document.body.append(i);
		}
	});
	const input = await page.$("#dnd-src");
	await input.uploadFile(...paths);
}

/* Drop the helper input's files on the page: loose files, and those whose
 * name starts with folder + "-" as a folder of that name (a directory entry
 * as a real drag from the desktop gives, read through createReader). */
async function dropFiles(folder) {
	await page.evaluate((folder) => {
		const files = [...document.getElementById("dnd-src").files];
		const loose = files.filter((f) => !folder || !f.name.startsWith(folder + "-"));
		const inDir = files.filter((f) => folder && f.name.startsWith(folder + "-"));
		const fileEntry = (f) => ({ isFile: true, isDirectory: false, name: f.name, file: (ok) => ok(f) });
		const items = loose.map((f) => ({ webkitGetAsEntry: () => fileEntry(f) }));
		if (inDir.length) {
			let given = false;
			const dir = { isFile: false, isDirectory: true, name: folder,
				createReader: () => ({ readEntries: (ok) => { ok(given ? [] : inDir.map(fileEntry)); given = true; } }) };
			items.push({ webkitGetAsEntry: () => dir });
		}
		const dt = new DataTransfer();
		for (const f of loose)
			dt.items.add(f);
		const main = document.getElementById("main");
		const over = new DragEvent("dragover", { bubbles: true, cancelable: true, dataTransfer: dt });
		main.dispatchEvent(over);
		const drop = new DragEvent("drop", { bubbles: true, cancelable: true, dataTransfer: dt });
		Object.defineProperty(drop, "dataTransfer", { value: { items, files: loose } });
		main.dispatchEvent(drop);
	}, folder || "");
}

async function uploadsSettled(n, timeout) {
	await page.waitForFunction((n) => {
		const lis = [...document.querySelectorAll("#up-list li")];
		return lis.length >= n && lis.every((l) => ["done", "instant", "error"].includes(l.dataset.state));
	}, { timeout: timeout || 180000, polling: 200 }, n);
	return page.evaluate(() => Object.fromEntries([...document.querySelectorAll("#up-list li")].map((l) => [l.dataset.path, l.dataset.state])));
}

async function main() {
	fs.mkdirSync(arts, { recursive: true });
	const big = crypto.randomBytes(BIG);
	const bigPath = path.join(work, "big.bin");
	fs.writeFileSync(bigPath, big);
	const pics = [];
	for (let i = 0; i < 100; i++) {
		const p = path.join(work, `pics-${String(i).padStart(3, "0")}.txt`);
		fs.writeFileSync(p, `file ${i} ` + crypto.randomBytes(64).toString("hex"));
		pics.push(p);
	}
	const dl = path.join(work, "downloads");
	fs.mkdirSync(dl, { recursive: true });

	const browser = await puppeteer.launch({
		executablePath: CHROMIUM, headless: true,
		args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
	});
	try {
		const ctx = browser.defaultBrowserContext();
		page = await browser.newPage();
		await page.setViewport({ width: 1200, height: 900 });
		const errors = [];
		page.on("pageerror", (e) => errors.push(String(e)));
		page.on("dialog", onDialog);
		page.on("error", (e) => console.log("   page crashed: " + e));
		page.on("framenavigated", (f) => { if (f === page.mainFrame()) console.log("   navigated: " + f.url()); });
		page.on("console", (m) => { if (!/Failed to load resource/.test(m.text())) console.log("   console: " + m.text()); });
		const t = async (name, fn) => {
			step = name;
			await fn();
			console.log("ok " + name);
		};

		await t("login page", async () => {
			await page.goto(base + "/", { waitUntil: "load" });
			await page.waitForSelector("#login:not([hidden])");
			await shot("01-login");
			await page.type("#login-user", "alice");
			await page.type("#login-password", "wrong");
			await page.click("#login-submit");
			await page.waitForFunction(() => document.getElementById("login-error").textContent.length > 0);
		});
		await t("log in", async () => {
			await page.evaluate(() => { document.getElementById("login-user").value = ""; document.getElementById("login-password").value = ""; });
			await login("alice", "pw-alice");
			const c = (await page.cookies()).find((c) => c.name === "sd_session");
			assert(c && c.httpOnly && c.sameSite === "Strict", "cookie flags " + JSON.stringify(c));
			assert(await page.evaluate(() => document.cookie) === "", "the cookie is readable by script");
			await shot("02-files");
		});
		await t("make a folder", async () => {
			answerNext("docs");
			await page.click("#btn-mkdir");
			await waitRow("docs");
			await page.click(rowSel("docs") + " a.dir");
			await page.waitForFunction(() => location.hash === "#/files/docs");
			await page.waitForSelector("#list[data-loaded='1']");
		});
		await t("drag and drop a 50 MiB file and a folder of 100 files", async () => {
			await filesIntoPage([bigPath, ...pics]);
			await dropFiles("pics");
			/* progress is shown while it runs */
			await page.waitForFunction(() => {
				const l = document.querySelector("#up-list li[data-path='/docs/big.bin']");
				return l && ["hashing", "uploading"].includes(l.dataset.state);
			}, { timeout: 30000, polling: 50 });
			await shot("03-uploading");
			const st = await uploadsSettled(101);
			assert(st["/docs/big.bin"] === "done", "big.bin: " + st["/docs/big.bin"]);
			const bad = Object.entries(st).filter(([, s]) => s !== "done");
			assert(!bad.length, "not done: " + JSON.stringify(bad.slice(0, 5)));
			await shot("04-uploaded");
			const s = await rest("GET", "/api/v1/stat/docs/big.bin", "alice:pw-alice");
			assert(s.status === 200 && s.json().sha256 === sha(big) && s.json().size === BIG, "stored big.bin " + s.buf);
			const ls = await rest("GET", "/api/v1/fs/docs/pics?limit=1000", "alice:pw-alice");
			assert(ls.json().entries.length === 100, "pics has " + ls.json().entries.length);
			const one = await rest("GET", "/api/v1/fs/docs/pics/pics-042.txt", "alice:pw-alice");
			assert(one.buf.equals(fs.readFileSync(pics[42])), "pics-042 differs");
		});
		await t("the same 50 MiB file again is instant", async () => {
			await page.goto(base + "/#/files/", { waitUntil: "load" });
			await page.waitForSelector("#list[data-loaded='1']");
			await filesIntoPage([bigPath]);
			const t0 = Date.now();
			await dropFiles("");
			await page.waitForSelector("#up-list li[data-path='/big.bin'][data-state='instant']", { timeout: 60000 });
			const text = await page.$eval("#up-list li[data-path='/big.bin'] .up-state", (e) => e.textContent);
			assert(/instant/.test(text), "says " + text);
			console.log(`   instant re-upload of 50 MiB (hash + proof) in ${Date.now() - t0} ms`);
			await waitRow("big.bin");
			await shot("05-instant");
		});
		await t("pause, resume, and resume after a dropped connection", async () => {
			const other = crypto.randomBytes(BIG);
			const op = path.join(work, "resume.bin");
			fs.writeFileSync(op, other);
			await filesIntoPage([op]);
			await dropFiles("");
			const li = "#up-list li[data-path='/resume.bin']";
			await page.waitForFunction((s) => {
				const l = document.querySelector(s);
				return l && l.dataset.state === "uploading" && l.querySelector("progress").value > 0;
			}, { timeout: 60000, polling: 20 }, li);
			await page.click(li + " .up-pause");
			await page.waitForSelector(li + "[data-state='paused']");
			const at = await page.$eval(li + " progress", (p) => p.value);
			await new Promise((r) => setTimeout(r, 500));
			await page.click(li + " .up-pause"); /* Resume */
			await page.waitForFunction((s, at) => {
				const l = document.querySelector(s);
				return l.dataset.state === "uploading" && l.querySelector("progress").value > 0;
			}, { timeout: 30000, polling: 20 }, li, at);
			await page.setOfflineMode(true);
			await page.waitForSelector(li + "[data-state='retrying']", { timeout: 30000 });
			await shot("05b-retrying");
			await new Promise((r) => setTimeout(r, 1500));
			await page.setOfflineMode(false);
			await page.waitForSelector(li + "[data-state='done']", { timeout: 120000 });
			const s = await rest("GET", "/api/v1/stat/resume.bin", "alice:pw-alice");
			assert(s.status === 200 && s.json().sha256 === sha(other), "resumed upload stored " + s.buf);
			const v = s.json().versions;
			assert(v === 1, "versions " + v);
		});
		await t("download and compare the bytes", async () => {
			const cdp = await page.target().createCDPSession();
			await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: dl });
			await page.click(rowSel("big.bin") + " a.file");
			const f = path.join(dl, "big.bin");
			for (let i = 0; i < 600 && !(fs.existsSync(f) && fs.statSync(f).size === BIG); i++)
				await new Promise((r) => setTimeout(r, 100));
			assert(fs.existsSync(f), "no download");
			assert(sha(fs.readFileSync(f)) === sha(big), "downloaded bytes differ");
		});
		await t("rename", async () => {
			answerNext("renamed.bin");
			await rowButton("big.bin", "act-rename");
			await waitRow("renamed.bin");
		});
		await t("delete and restore from the trash", async () => {
			answerNext();
			await rowButton("renamed.bin", "act-delete");
			await page.waitForFunction((s) => !document.querySelector(s), {}, rowSel("renamed.bin"));
			await page.click("#nav-trash");
			await page.waitForSelector("#trash tr[data-path='/renamed.bin']");
			await shot("06-trash");
			await page.click("#trash tr[data-path='/renamed.bin'] .act-restore");
			await page.waitForFunction(() => /restored/.test(document.getElementById("status").textContent));
			const s = await rest("GET", "/api/v1/stat/renamed.bin", "alice:pw-alice");
			assert(s.status === 200 && s.json().sha256 === sha(big), "not restored: " + s.status);
		});
		await t("restore an older version", async () => {
			await rest("PUT", "/api/v1/fs/notes.txt", "alice:pw-alice", "version one\n");
			await new Promise((r) => setTimeout(r, 20));
			await rest("PUT", "/api/v1/fs/notes.txt", "alice:pw-alice", "version two\n");
			await page.goto(base + "/#/versions/notes.txt", { waitUntil: "load" });
			await page.waitForSelector("#versions .act-restore");
			await shot("07-versions");
			await page.click("#versions .act-restore");
			await page.waitForFunction(() => /restored/.test(document.getElementById("status").textContent));
			const g = await rest("GET", "/api/v1/fs/notes.txt", "alice:pw-alice");
			assert(g.buf.toString() === "version one\n", "content now " + g.buf);
		});
		await t("a folder as it was", async () => {
			const at = new Date(Date.now() - 1000).toISOString();
			await rest("DELETE", "/api/v1/fs/docs?recursive=1", "alice:pw-alice");
			await page.goto(base + "/#/past/?at=" + at, { waitUntil: "load" });
			await waitRow("docs");
			await shot("08-past");
		});
		await t("an XSS file name is shown as text", async () => {
			const evil = "<img src=x onerror=window.__xss=1>.txt";
			const r = await rest("PUT", "/api/v1/fs/" + encodeURIComponent(evil), "alice:pw-alice", "x");
			assert(r.status === 201, "put " + r.status);
			await page.goto(base + "/#/files/", { waitUntil: "load" });
			await waitRow(evil);
			const txt = await page.$eval(rowSel(evil) + " .col-name", (e) => e.textContent);
			assert(txt === evil, "shown as " + txt);
			assert(!(await page.$("#list img")), "an img element was made");
			assert(await page.evaluate(() => window.__xss === undefined), "the handler ran");
			await shot("09-xss");
		});
		await t("a cross-site form post is refused (CSRF)", async () => {
			/* another origin (same site: 127.0.0.1 on another port, so the
			 * SameSite=Strict cookie is sent; the CSRF token is what stops it) */
			const srv = http.createServer((q, s) => {
				s.setHeader("Content-Type", "text/html");
				s.end(`<form id=f method=POST action="${base}/api/v1/fs/evil?op=mkdir"><input name=a value=b></form>` +
					"<script>document.getElementById('f').submit()</script>");
			});
			await new Promise((r) => srv.listen(0, "127.0.0.1", r));
			const other = await browser.newPage();
			const resp = new Promise((res) => other.on("response", (r) => { if (r.url().includes("/api/v1/fs/evil")) res(r); }));
			await other.goto(`http://127.0.0.1:${srv.address().port}/`);
			const r = await resp;
			assert(r.status() === 403, "cross-site post got " + r.status());
			await other.close();
			srv.close();
			/* and from the page itself without the header */
			const st = await page.evaluate(async () => (await fetch("/api/v1/fs/evil2?op=mkdir", { method: "POST" })).status);
			assert(st === 403, "fetch without token got " + st);
			const ls = await rest("GET", "/api/v1/fs/", "alice:pw-alice");
			const names = ls.json().entries.map((e) => e.name);
			assert(!names.includes("evil") && !names.includes("evil2"), "made: " + names);
		});
		await t("the cookie is dead after logout", async () => {
			const c = (await page.cookies()).find((c) => c.name === "sd_session");
			await logout();
			await shot("10-logged-out");
			const r = await fetch(base + "/api/v1/me", { headers: { Cookie: "sd_session=" + c.value } });
			assert(r.status === 401, "old cookie got " + r.status);
		});
		await t("an admin creates a user who then logs in", async () => {
			await login("root", "pw-root");
			await page.click("#nav-admin");
			await page.waitForSelector("#users tr[data-user='alice']");
			await page.waitForSelector("#dash-figures");
			await page.type("#user-form input[name=name]", "dave");
			await page.type("#user-form input[name=password]", "pw-dave-123");
			await page.type("#user-form input[name=quota]", "1G");
			await page.click("#user-form button[type=submit]");
			await page.waitForSelector("#users tr[data-user='dave']");
			await shot("11-admin");
			await logout();
			await login("dave", "pw-dave-123");
			const who = await page.$eval("#who", (e) => e.textContent);
			assert(who === "dave", "who " + who);
		});
		await t("another user's content: instant after the proof of possession", async () => {
			/* alice holds these bytes, dave does not: the server challenges,
			 * the page proves it has them by hashing the asked ranges */
			await filesIntoPage([bigPath]);
			const t0 = Date.now();
			await dropFiles("");
			await page.waitForSelector("#up-list li[data-path='/big.bin'][data-state='instant']", { timeout: 60000 });
			console.log(`   instant upload by proof of possession of 50 MiB in ${Date.now() - t0} ms`);
			const s = await rest("GET", "/api/v1/stat/big.bin", "dave:pw-dave-123");
			assert(s.status === 200 && s.json().sha256 === sha(big), "dave's big.bin " + s.buf);
		});
		await t("account: a new token, revoked; a new password", async () => {
			await page.click("#nav-account");
			await page.waitForSelector("#tokens tr[data-state='active']");
			await page.type("#token-form input[name=password]", "pw-dave-123");
			await page.click("#token-form button[type=submit]");
			await page.waitForSelector("#new-token:not([hidden]) code");
			const tok = await page.$eval("#new-token code", (e) => e.textContent);
			const bearer = { Authorization: "Bearer " + tok };
			assert((await fetch(base + "/api/v1/me", { headers: bearer })).status === 200, "new token refused");
			await page.waitForSelector("#tokens tr[data-state='active'] .act-revoke");
			const ids = await page.$$eval("#tokens tr[data-state='active']", (rs) => rs.map((r) => Number(r.dataset.id)));
			const newest = Math.max(...ids);
			await page.click(`#tokens tr[data-id='${newest}'] .act-revoke`);
			await page.waitForSelector(`#tokens tr[data-id='${newest}'][data-state='revoked']`);
			assert((await fetch(base + "/api/v1/me", { headers: bearer })).status === 401, "revoked token still works");
			await shot("13-account");
			await page.type("#password-form input[name=old]", "pw-dave-123");
			await page.type("#password-form input[name=new]", "pw-dave-new");
			await page.click("#password-form button[type=submit]");
			await page.waitForFunction(() => /Password changed/.test(document.getElementById("status").textContent));
			await logout();
			await login("dave", "pw-dave-new");
		});
		await t("phone-sized screen", async () => {
			await rest("PUT", "/api/v1/fs/a%20rather%20long%20file%20name%20for%20a%20phone.txt", "dave:pw-dave-123", "hello");
			await rest("POST", "/api/v1/fs/photos?op=mkdir", "dave:pw-dave-123");
			await page.setViewport({ width: 390, height: 800 });
			await page.goto(base + "/#/files/", { waitUntil: "load" });
			await page.waitForSelector("#list[data-loaded='1']");
			await shot("12-phone");
		});
		assert(!errors.length, "page errors: " + errors.join("; "));
		void ctx;
	} finally {
		await browser.close();
	}
}

main().then(() => {
	console.log("e2e: all passed");
	process.exit(0);
}, async (e) => {
	console.log(`FAIL ${step}: ${e && e.stack || e}`);
	try {
		console.log("   status line: " + await page.$eval("#status", (e) => e.textContent));
		await page.screenshot({ path: path.join(arts, "FAILED-" + step.replace(/[^a-z0-9]+/gi, "-") + ".png") });
	} catch (e2) { console.log("   no screenshot: " + e2); }
	process.exit(1);
});
