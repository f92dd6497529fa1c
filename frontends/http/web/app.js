/*
 * app.js - the storaged web client (docs/web-client.md). Plain JavaScript,
 * no build step, no inline code (the page's CSP forbids it).
 *
 * Everything goes through the REST API of the same origin with the session
 * cookie; every request carries the session's CSRF token in X-CSRF-Token.
 * Names from the server are only ever put into the page as text
 * (textContent, attribute values), never as markup.
 *
 * Views (location.hash): #/files/<path>   browse, upload, download
 *                        #/past/<path>?at=<time>   a folder as it was
 *                        #/versions/<path>  a file's versions
 *                        #/trash          deleted items
 *                        #/account        own password and tokens
 *                        #/admin          users and the dashboard (admins)
 */
"use strict";

const S = { user: null, admin: false, readonly: false, csrf: "" };
const ROW_H = 34;          /* px of a listing row (the list is virtualised) */
const PUT_MAX = 8 << 20;   /* files up to this go in one PUT; larger through a handle */
const CHUNK = 8 << 20;     /* bytes per handle write */
const HASH_PIECE = 4 << 20;
const PARALLEL = 3;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false)
			continue;
		if (k === "class")
			e.className = v;
		else if (k === "text")
			e.textContent = v;
		else if (k.startsWith("on"))
			e.addEventListener(k.slice(2), v);
		else
			e.setAttribute(k, v === true ? "" : String(v));
	}
	for (const c of kids)
		if (c !== null && c !== undefined)
			e.append(c instanceof Node ? c : document.createTextNode(String(c)));
	return e;
}

let statusTimer = null;
function status(msg, bad) {
	const s = $("status");
	s.textContent = msg || "";
	s.className = bad ? "bad" : "";
	clearTimeout(statusTimer);
	if (msg)
		statusTimer = setTimeout(() => { s.textContent = ""; }, bad ? 15000 : 6000);
}

/* Percent-encode each component of a path ("/a b/c" -> "/a%20b/c"). */
function encPath(p) {
	return p.split("/").map(encodeURIComponent).join("/");
}

function join(dir, name) {
	return (dir === "/" ? "" : dir) + "/" + name;
}

function parentOf(p) {
	const i = p.lastIndexOf("/");
	return i <= 0 ? "/" : p.slice(0, i);
}

function fmtSize(n) {
	if (n === undefined || n === null)
		return "";
	const u = ["B", "KiB", "MiB", "GiB", "TiB"];
	let i = 0;
	while (n >= 1024 && i < u.length - 1) {
		n /= 1024;
		i++;
	}
	return (i ? n.toFixed(1) : String(n)) + " " + u[i];
}

function fmtTime(t) {
	if (t === undefined || t === null)
		return "";
	const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
	return d.toLocaleString();
}

class ApiError extends Error {
	constructor(status, body) {
		super((body && body.message) || ("HTTP " + status));
		this.status = status;
		this.code = body && body.error;
		this.body = body;
	}
}

async function api(method, path, opts) {
	opts = opts || {};
	const headers = { "X-Requested-With": "storaged-web" };
	if (S.csrf)
		headers["X-CSRF-Token"] = S.csrf;
	let body = opts.body;
	if (opts.json !== undefined) {
		headers["Content-Type"] = "application/json";
		body = JSON.stringify(opts.json);
	}
	Object.assign(headers, opts.headers || {});
	const r = await fetch(path, { method, headers, body, credentials: "same-origin", cache: "no-store" });
	if (r.status === 401 && S.user && !opts.noLogout) {
		loggedOut("Your session has ended: log in again.");
		throw new ApiError(401, null);
	}
	if (opts.raw)
		return r;
	let j = null;
	const ct = r.headers.get("Content-Type") || "";
	if (ct.startsWith("application/json"))
		j = await r.json();
	if (!r.ok)
		throw new ApiError(r.status, j);
	return j;
}

/* ------------------------------------------------------------ login */

function loggedOut(msg) {
	S.user = null;
	S.csrf = "";
	$("nav").hidden = true;
	$("logout").hidden = true;
	$("who").textContent = "";
	$("view").hidden = true;
	$("view").replaceChildren();
	$("login").hidden = false;
	$("login-error").textContent = msg || "";
	$("login-user").focus();
}

function loggedIn(j) {
	S.user = j.user;
	S.admin = j.admin;
	S.readonly = j.readonly;
	S.csrf = j.csrf;
	$("login").hidden = true;
	$("nav").hidden = false;
	$("nav-admin").hidden = !S.admin;
	$("logout").hidden = false;
	$("who").textContent = j.user + (j.readonly ? " (read-only)" : "");
	$("view").hidden = false;
	route();
}

async function doLogin(ev) {
	ev.preventDefault();
	const user = $("login-user").value, pw = $("login-password").value, tok = $("login-token").value;
	const body = tok ? { token: tok } : { user, password: pw };
	$("login-error").textContent = "";
	try {
		const j = await api("POST", "/api/v1/session", { json: body, noLogout: true });
		$("login-password").value = "";
		$("login-token").value = "";
		loggedIn(j);
	} catch (e) {
		$("login-error").textContent = e.status === 429 ? e.message :
			e.status === 401 ? "Wrong user name, password or token." : e.message;
	}
}

async function doLogout() {
	try {
		await api("DELETE", "/api/v1/session", { noLogout: true });
	} catch (e) { /* the cookie is gone either way */ }
	loggedOut("Logged out.");
}

/* ----------------------------------------------------------- router */

function route() {
	if (!S.user)
		return;
	const h = decodeURIComponent(location.hash.slice(1) || "/files/");
	const v = $("view");
	v.replaceChildren();
	document.querySelectorAll("#nav a").forEach((a) => a.classList.remove("on"));
	if (h.startsWith("/files")) {
		$("nav-files").classList.add("on");
		Files.show(h.slice(6) || "/");
	} else if (h.startsWith("/past")) {
		const q = h.indexOf("?at=");
		Files.show(q < 0 ? h.slice(5) || "/" : h.slice(5, q) || "/", q < 0 ? "" : h.slice(q + 4));
	} else if (h.startsWith("/versions")) {
		Versions.show(h.slice(9) || "/");
	} else if (h.startsWith("/trash")) {
		$("nav-trash").classList.add("on");
		Trash.show();
	} else if (h.startsWith("/account")) {
		$("nav-account").classList.add("on");
		Account.show();
	} else if (h.startsWith("/admin") && S.admin) {
		$("nav-admin").classList.add("on");
		Admin.show();
	} else {
		location.hash = "#/files/";
	}
}

function go(hash) {
	if (location.hash === hash)
		route();
	else
		location.hash = hash;
}

/* ------------------------------------------------------------ files */

const Files = {
	dir: "/",
	at: "",            /* a moment: the folder as it was (read-only) */
	all: [],           /* every entry of the folder */
	shown: [],         /* filtered and sorted */
	sel: -1,
	sort: { key: "name", desc: false },
	filter: "",
	loadId: 0,

	url(path, at) {
		return "/api/v1/fs" + encPath(path) + (at ? (path.includes("?") ? "&" : "?") + "at=" + encodeURIComponent(at) : "");
	},

	show(dir, at) {
		this.dir = dir.replace(/\/+$/, "") || "/";
		this.at = at || "";
		this.sel = -1;
		this.filter = "";
		const v = $("view");
		const crumbs = el("nav", { class: "crumbs", id: "crumbs", "aria-label": "folder" });
		const parts = this.dir.split("/").filter(Boolean);
		const base = this.at ? "#/past" : "#/files";
		const tail = this.at ? "?at=" + this.at : "";
		crumbs.append(el("a", { href: base + "/" + tail, text: "Home" }));
		let acc = "";
		for (const p of parts) {
			acc += "/" + p;
			crumbs.append(" / ", el("a", { href: base + encPath(acc) + tail, text: p }));
		}
		const tools = el("div", { class: "tools" });
		if (!this.at && !S.readonly) {
			tools.append(
				el("button", { type: "button", id: "btn-mkdir", onclick: () => this.mkdir() }, "New folder"),
				el("label", { class: "button", for: "pick-files" }, "Upload files"),
				el("input", { type: "file", id: "pick-files", multiple: true, hidden: true,
					onchange: (e) => { Uploads.addFiles([...e.target.files].map((f) => ({ file: f, rel: f.name })), this.dir); e.target.value = ""; } }),
				el("label", { class: "button", for: "pick-folder" }, "Upload folder"),
				el("input", { type: "file", id: "pick-folder", webkitdirectory: true, hidden: true,
					onchange: (e) => { Uploads.addFiles([...e.target.files].map((f) => ({ file: f, rel: f.webkitRelativePath || f.name })), this.dir); e.target.value = ""; } }));
		}
		const atInput = el("input", { type: "datetime-local", id: "at-input", step: 1, title: "show this folder as it was at a moment" });
		tools.append(el("span", { class: "past" }, atInput,
			el("button", { type: "button", id: "btn-past", onclick: () => {
				if (atInput.value)
					go("#/past" + encPath(this.dir) + "?at=" + new Date(atInput.value).toISOString());
			} }, "View as it was"),
			this.at ? el("a", { href: "#/files" + encPath(this.dir), class: "button", id: "btn-now" }, "Back to now") : null,
			this.at && !S.readonly ? el("button", { type: "button", id: "btn-rollback", onclick: () => this.rollback() }, "Roll folder back to this moment") : null));
		const filter = el("input", { type: "search", id: "filter", placeholder: "Filter by name", "aria-label": "filter by name",
			oninput: (e) => { this.filter = e.target.value.toLowerCase(); this.apply(); } });
		const head = el("div", { class: "row head", role: "row" });
		for (const [key, label] of [["name", "Name"], ["size", "Size"], ["mtime", "Modified"]])
			head.append(el("button", { type: "button", class: "col-" + key, id: "sort-" + key,
				onclick: () => { this.sort = { key, desc: this.sort.key === key ? !this.sort.desc : false }; this.apply(); } }, label));
		head.append(el("span", { class: "col-act" }));
		const list = el("div", { class: "list", id: "list", tabindex: 0, role: "grid", "aria-label": "files",
			onscroll: () => this.paint(), onkeydown: (e) => this.key(e) });
		list.append(el("div", { class: "spacer", id: "spacer" }));
		const info = el("div", { class: "info", id: "list-info" });
		const preview = el("div", { class: "preview", id: "preview", hidden: true });
		if (this.at)
			v.append(el("p", { class: "note", text: "The folder as it was at " + fmtTime(this.at) + " (read-only)." }));
		v.append(crumbs, tools, filter, head, list, info, preview, Uploads.panel());
		this.load();
		list.focus();
	},

	async load() {
		const id = ++this.loadId;
		this.all = [];
		$("list-info").textContent = "Loading...";
		let after = "";
		const t0 = performance.now();
		window.firstListingMs = 0;
		try {
			for (;;) {
				/* a small first page paints at once; then big pages */
				let u = "/api/v1/fs" + encPath(this.dir) + "?limit=" + (after ? 1000 : 200) + (after ? "&after=" + encodeURIComponent(after) : "");
				if (this.at)
					u += "&at=" + encodeURIComponent(this.at);
				const j = await api("GET", u);
				if (id !== this.loadId)
					return;
				this.all.push(...j.entries);
				this.apply();
				if (!window.firstListingMs)
					window.firstListingMs = performance.now() - t0;
				if (!j.more)
					break;
				after = j.next;
			}
			$("list").dataset.loaded = "1";
		} catch (e) {
			if (id === this.loadId)
				$("list-info").textContent = e.status === 404 ? "No such folder." : "Error: " + e.message;
		}
	},

	apply() {
		const f = this.filter, k = this.sort.key, d = this.sort.desc ? -1 : 1;
		this.shown = this.all.filter((e) => !f || e.name.toLowerCase().includes(f));
		this.shown.sort((a, b) => {
			if (a.kind !== b.kind)
				return a.kind === "dir" ? -1 : 1;
			let c = k === "name" ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : (a[k] || 0) - (b[k] || 0);
			return c * d;
		});
		document.querySelectorAll(".head button").forEach((b) => b.classList.remove("asc", "desc"));
		const sb = $("sort-" + k);
		if (sb)
			sb.classList.add(this.sort.desc ? "desc" : "asc");
		if (this.sel >= this.shown.length)
			this.sel = this.shown.length - 1;
		$("spacer").style.height = this.shown.length * ROW_H + "px";
		$("list-info").textContent = this.shown.length + " of " + this.all.length + " entries";
		this.paint(true);
	},

	/* Draw only the rows in view (a 10,000-entry folder stays fast). */
	paint(force) {
		const list = $("list");
		if (!list)
			return;
		const first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - 5);
		const last = Math.min(this.shown.length, first + Math.ceil(list.clientHeight / ROW_H) + 10);
		if (!force && this.painted && this.painted[0] === first && this.painted[1] === last)
			return;
		this.painted = [first, last];
		const sp = $("spacer");
		sp.replaceChildren();
		for (let i = first; i < last; i++)
			sp.append(this.row(this.shown[i], i));
	},

	row(e, i) {
		const path = join(this.dir, e.name);
		const r = el("div", { class: "row" + (i === this.sel ? " sel" : ""), role: "row", "data-name": e.name,
			onclick: () => this.select(i), ondblclick: () => this.open(i) });
		r.style.top = i * ROW_H + "px";
		const name = e.kind === "dir"
			? el("a", { href: (this.at ? "#/past" : "#/files") + encPath(path) + (this.at ? "?at=" + this.at : ""), class: "dir" }, e.name + "/")
			: el("a", { href: this.url(path, this.at), download: e.name, class: "file" }, e.name);
		r.append(el("span", { class: "col-name" }, name),
			el("span", { class: "col-size" }, e.kind === "dir" ? "" : fmtSize(e.size)),
			el("span", { class: "col-mtime" }, fmtTime(e.mtime)));
		const act = el("span", { class: "col-act" });
		if (e.kind === "file")
			act.append(el("button", { type: "button", title: "preview", onclick: (ev) => { ev.stopPropagation(); this.preview(e); } }, "View"));
		if (!this.at && !S.readonly) {
			act.append(el("button", { type: "button", class: "act-rename", onclick: (ev) => { ev.stopPropagation(); this.rename(e); } }, "Rename"),
				el("button", { type: "button", class: "act-move", onclick: (ev) => { ev.stopPropagation(); this.moveCopy(e, "move"); } }, "Move"),
				el("button", { type: "button", class: "act-copy", onclick: (ev) => { ev.stopPropagation(); this.moveCopy(e, "copy"); } }, "Copy"),
				el("button", { type: "button", class: "act-delete", onclick: (ev) => { ev.stopPropagation(); this.remove(e); } }, "Delete"));
			if (e.kind === "file")
				act.append(el("a", { class: "button act-versions", href: "#/versions" + encPath(path) }, "Versions"));
		}
		r.append(act);
		return r;
	},

	select(i) {
		this.sel = i;
		const list = $("list");
		const top = i * ROW_H;
		if (top < list.scrollTop)
			list.scrollTop = top;
		else if (top + ROW_H > list.scrollTop + list.clientHeight)
			list.scrollTop = top + ROW_H - list.clientHeight;
		this.paint(true);
	},

	open(i) {
		const e = this.shown[i];
		if (!e)
			return;
		const path = join(this.dir, e.name);
		if (e.kind === "dir")
			go((this.at ? "#/past" : "#/files") + encPath(path) + (this.at ? "?at=" + this.at : ""));
		else
			this.preview(e);
	},

	key(ev) {
		const n = this.shown.length;
		const e = this.shown[this.sel];
		switch (ev.key) {
		case "ArrowDown": this.select(Math.min(n - 1, this.sel + 1)); break;
		case "ArrowUp": this.select(Math.max(0, this.sel - 1)); break;
		case "PageDown": this.select(Math.min(n - 1, this.sel + 10)); break;
		case "PageUp": this.select(Math.max(0, this.sel - 10)); break;
		case "Home": this.select(0); break;
		case "End": this.select(n - 1); break;
		case "Enter": this.open(this.sel); break;
		case "Backspace":
			if (this.dir !== "/")
				go((this.at ? "#/past" : "#/files") + encPath(parentOf(this.dir)) + (this.at ? "?at=" + this.at : ""));
			break;
		case "Delete": if (e && !this.at) this.remove(e); break;
		case "F2": if (e && !this.at) this.rename(e); break;
		default: return;
		}
		ev.preventDefault();
	},

	async act(fn, done) {
		try {
			await fn();
			status(done);
			this.load();
		} catch (e) {
			status(e.message, true);
		}
	},

	mkdir() {
		const name = prompt("New folder name");
		if (name)
			this.act(() => api("POST", "/api/v1/fs" + encPath(join(this.dir, name)) + "?op=mkdir"), "Folder " + name + " made.");
	},

	rename(e) {
		const name = prompt("New name", e.name);
		if (name && name !== e.name)
			this.act(() => api("POST", "/api/v1/fs" + encPath(join(this.dir, e.name)) + "?op=move&to=" + encodeURIComponent(join(this.dir, name))),
				"Renamed to " + name + ".");
	},

	moveCopy(e, op) {
		const to = prompt((op === "move" ? "Move" : "Copy") + " to (full path)", join(this.dir, e.name));
		if (to)
			this.act(() => api("POST", "/api/v1/fs" + encPath(join(this.dir, e.name)) + "?op=" + op + "&parents=1&to=" + encodeURIComponent(to)),
				(op === "move" ? "Moved" : "Copied") + " to " + to + ".");
	},

	remove(e) {
		if (!confirm("Delete " + e.name + "? (It goes to the trash.)"))
			return;
		this.act(() => api("DELETE", "/api/v1/fs" + encPath(join(this.dir, e.name)) + (e.kind === "dir" ? "?recursive=1" : "")),
			e.name + " deleted (restore it from the trash).");
	},

	async rollback() {
		if (!confirm("Roll " + this.dir + " back to " + fmtTime(this.at) + "? (What was made since goes to the trash.)"))
			return;
		try {
			const j = await api("POST", "/api/v1/rollback", { json: { path: this.dir, at: this.at } });
			status("Rolled back: " + j.restored + " restored, " + j.revived + " revived, " + j.trashed + " to the trash.");
			go("#/files" + encPath(this.dir));
		} catch (e) {
			status(e.message, true);
		}
	},

	/* Images and text where the browser shows them; anything else downloads. */
	async preview(e) {
		const p = $("preview");
		const url = this.url(join(this.dir, e.name), this.at);
		p.replaceChildren(el("button", { type: "button", class: "close", onclick: () => { p.hidden = true; } }, "Close"),
			el("h2", { text: e.name }));
		p.hidden = false;
		const ext = (e.name.split(".").pop() || "").toLowerCase();
		if (["png", "jpg", "jpeg", "gif", "webp", "svg", "bmp", "ico"].includes(ext)) {
			p.append(el("img", { src: url, alt: e.name }));
		} else if (e.size <= 1 << 20) {
			const r = await api("GET", url, { raw: true, headers: { Range: "bytes=0-65535" } });
			const buf = new Uint8Array(await r.arrayBuffer());
			const text = new TextDecoder("utf-8", { fatal: false }).decode(buf);
			if (/[\u0000-\u0008\u000e-\u001f]/.test(text.slice(0, 4096)))
				p.append(el("p", { text: "No preview for binary content." }), el("a", { href: url, download: e.name, class: "button" }, "Download"));
			else
				p.append(el("pre", { text }));
		} else {
			p.append(el("p", { text: fmtSize(e.size) + ": too large to preview." }), el("a", { href: url, download: e.name, class: "button" }, "Download"));
		}
	},
};

/* ---------------------------------------------------------- uploads */

async function readSlice(file, off, len) {
	return new Uint8Array(await file.slice(off, off + len).arrayBuffer());
}

function xhrPut(url, body, headers, onprogress, job) {
	return new Promise((resolve, reject) => {
		const x = new XMLHttpRequest();
		job.xhr = x;
		x.open("PUT", url);
		x.setRequestHeader("X-CSRF-Token", S.csrf);
		x.setRequestHeader("X-Requested-With", "storaged-web");
		for (const [k, v] of Object.entries(headers || {}))
			x.setRequestHeader(k, v);
		x.upload.onprogress = (e) => onprogress(e.loaded);
		x.onload = () => {
			job.xhr = null;
			let j = null;
			try { j = JSON.parse(x.responseText); } catch (e) { /* not JSON */ }
			if (x.status >= 200 && x.status < 300)
				resolve(j);
			else
				reject(new ApiError(x.status, j));
		};
		x.onerror = () => { job.xhr = null; reject(new ApiError(0, { message: "connection lost" })); };
		x.onabort = () => { job.xhr = null; reject(new ApiError(-1, { message: "paused" })); };
		x.send(body);
	});
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const Uploads = {
	jobs: [],
	running: 0,
	node: null,

	panel() {
		if (!this.node) {
			this.node = el("section", { class: "uploads", id: "uploads", hidden: true },
				el("h2", {}, "Uploads ", el("span", { id: "up-total" })),
				el("progress", { id: "up-overall", max: 1, value: 0 }),
				el("ul", { id: "up-list" }));
		}
		return this.node;
	},

	addFiles(items, dir) {
		for (const { file, rel } of items) {
			const job = { file, path: join(dir, rel), done: 0, state: "queued", paused: false, dir };
			const bar = el("progress", { max: file.size || 1, value: 0 });
			const st = el("span", { class: "up-state", text: "queued" });
			const pause = el("button", { type: "button", class: "up-pause", onclick: () => this.togglePause(job) }, "Pause");
			job.li = el("li", { "data-path": job.path }, el("span", { class: "up-name", text: rel }), bar, st, pause);
			job.bar = bar;
			job.st = st;
			job.pauseBtn = pause;
			this.jobs.push(job);
			$("up-list").append(job.li);
		}
		this.node.hidden = false;
		this.pump();
	},

	set(job, state, text) {
		job.state = state;
		job.st.textContent = text || state;
		job.li.dataset.state = state;
		if (state === "done" || state === "instant" || state === "error")
			job.pauseBtn.hidden = true;
		this.overall();
	},

	progress(job, n) {
		job.done = n;
		job.bar.value = n;
		this.overall();
	},

	overall() {
		let tot = 0, done = 0, fin = 0;
		for (const j of this.jobs) {
			tot += j.file.size;
			done += (j.state === "done" || j.state === "instant") ? j.file.size : j.done;
			if (["done", "instant", "error"].includes(j.state))
				fin++;
		}
		$("up-overall").max = tot || 1;
		$("up-overall").value = done;
		$("up-total").textContent = fin + " of " + this.jobs.length + " files, " + fmtSize(done) + " of " + fmtSize(tot);
	},

	togglePause(job) {
		job.paused = !job.paused;
		job.pauseBtn.textContent = job.paused ? "Resume" : "Pause";
		if (job.paused) {
			if (job.xhr)
				job.xhr.abort();
			this.set(job, "paused");
		} else if (job.resume) {
			const r = job.resume;
			job.resume = null;
			r();
		}
	},

	async waitUnpaused(job) {
		if (!job.paused)
			return;
		await new Promise((r) => { job.resume = r; });
	},

	pump() {
		while (this.running < PARALLEL) {
			const job = this.jobs.find((j) => j.state === "queued");
			if (!job)
				break;
			this.running++;
			job.state = "starting";
			this.run(job).catch((e) => this.set(job, "error", "failed: " + e.message)).finally(() => {
				this.running--;
				if (Files.dir === job.dir && $("list"))
					Files.load();
				this.pump();
			});
		}
	},

	async hash(job) {
		const h = new Sha256();
		const f = job.file;
		for (let off = 0; off < f.size; off += HASH_PIECE) {
			await this.waitUnpaused(job);
			h.update(await readSlice(f, off, HASH_PIECE));
			this.set(job, "hashing", "hashing " + Math.floor((off + HASH_PIECE > f.size ? f.size : off + HASH_PIECE) * 100 / f.size) + "%");
		}
		return h.hex();
	},

	/* Instant upload with proof of possession: true when the server had the content. */
	async instant(job, sha) {
		const f = job.file;
		const base = { path: job.path, sha256: sha, size: f.size, parents: true };
		let r = await api("POST", "/api/v1/instant", { json: base, raw: true });
		if (r.status === 404)
			return false;
		let j = await r.json();
		if (r.status === 200 && j.nonce) {
			const h = new Sha256().update(new TextEncoder().encode(j.nonce));
			for (const [off, len] of j.ranges)
				h.update(await readSlice(f, off, len));
			r = await api("POST", "/api/v1/instant", { json: Object.assign({ nonce: j.nonce, proof: h.hex() }, base), raw: true });
			j = await r.json();
		}
		if (r.status === 201)
			return true;
		throw new ApiError(r.status, j);
	},

	async run(job) {
		const f = job.file;
		const sha = await this.hash(job);
		job.sha = sha;
		if (f.size > 0 && await this.instant(job, sha)) {
			this.progress(job, f.size);
			this.set(job, "instant", "instant: the server already had it");
			return;
		}
		await this.waitUnpaused(job);
		if (f.size <= PUT_MAX)
			return this.put(job);
		return this.viaHandle(job);
	},

	async put(job) {
		for (let attempt = 0; ; attempt++) {
			await this.waitUnpaused(job);
			this.set(job, "uploading");
			try {
				await xhrPut("/api/v1/fs" + encPath(job.path) + "?parents=1", job.file,
					{ "X-Checksum-SHA256": job.sha, "Content-Type": "application/octet-stream" },
					(n) => this.progress(job, n), job);
				this.progress(job, job.file.size);
				this.set(job, "done");
				return;
			} catch (e) {
				if (e.status === -1)
					continue; /* paused: start again when resumed */
				if (e.status !== 0 || attempt >= 5)
					throw e;
				this.set(job, "retrying", "connection lost, retrying");
				await sleep(1000 * (attempt + 1));
			}
		}
	},

	/* Large files: a handle (docs/handle-api.md), written at offsets; after
	 * a pause or a dropped connection the handle's size says where to go on. */
	async viaHandle(job) {
		const f = job.file;
		const parent = parentOf(job.path);
		if (parent !== "/") {
			try {
				await api("POST", "/api/v1/fs" + encPath(parent) + "?op=mkdir&parents=1");
			} catch (e) {
				if (e.status !== 409)
					throw e;
			}
		}
		const open = async () => (await api("POST", "/api/v1/open", { json: { path: job.path, flags: ["write", "create", "truncate"] } })).handle;
		let h = await open();
		let off = 0, fails = 0;
		while (off < f.size) {
			await this.waitUnpaused(job);
			this.set(job, "uploading");
			const len = Math.min(CHUNK, f.size - off);
			try {
				const j = await xhrPut("/api/v1/handles/" + h + "/data?offset=" + off, f.slice(off, off + len),
					{ "Content-Type": "application/octet-stream" }, (n) => this.progress(job, off + n), job);
				off += j.written;
				fails = 0;
				this.progress(job, off);
			} catch (e) {
				if (e.status > 0 && e.status !== 404)
					throw e;
				if (e.status === 0) {
					if (++fails > 30)
						throw e;
					this.set(job, "retrying", "connection lost, resuming");
					await sleep(Math.min(500 * fails, 5000));
				}
				await this.waitUnpaused(job);
				/* where the server is: the handle's size (what arrived, in
				 * order), or a new handle when this one is gone (expired) */
				for (;;) {
					try {
						const st = await api("GET", "/api/v1/handles/" + h);
						off = Math.min(st.size, f.size);
						break;
					} catch (e2) {
						if (e2.status === 404) {
							h = await open();
							off = 0;
							break;
						}
						if (e2.status > 0 || ++fails > 30)
							throw e2;
						await sleep(Math.min(500 * fails, 5000));
					}
				}
				this.progress(job, off);
			}
		}
		const st = await api("POST", "/api/v1/handles/" + h + "/close");
		if (st.sha256 && st.sha256 !== job.sha)
			throw new Error("the stored content differs from the file (sha256 " + st.sha256 + ")");
		this.set(job, "done");
	},
};

/* Drag and drop of files and folders onto the file list. */
async function entriesOf(entry, prefix, out) {
	if (entry.isFile) {
		const file = await new Promise((res, rej) => entry.file(res, rej));
		out.push({ file, rel: prefix + entry.name });
	} else if (entry.isDirectory) {
		const reader = entry.createReader();
		for (;;) {
			const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
			if (!batch.length)
				break;
			for (const e of batch)
				await entriesOf(e, prefix + entry.name + "/", out);
		}
	}
}

function setupDrop() {
	const main = $("main");
	main.addEventListener("dragover", (e) => {
		if (!$("list") || Files.at || S.readonly)
			return;
		e.preventDefault();
		main.classList.add("drop");
	});
	main.addEventListener("dragleave", () => main.classList.remove("drop"));
	main.addEventListener("drop", async (e) => {
		main.classList.remove("drop");
		if (!$("list") || Files.at || S.readonly)
			return;
		e.preventDefault();
		const dir = Files.dir;
		const entries = [...e.dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
		const items = [];
		if (entries.length) {
			for (const en of entries)
				await entriesOf(en, "", items);
		} else {
			for (const f of e.dataTransfer.files)
				items.push({ file: f, rel: f.name });
		}
		Uploads.addFiles(items, dir);
	});
}

/* --------------------------------------------------------- versions */

const Versions = {
	async show(path) {
		const v = $("view");
		v.append(el("nav", { class: "crumbs" }, el("a", { href: "#/files" + encPath(parentOf(path)), text: "Back to " + parentOf(path) })),
			el("h1", {}, "Versions of ", el("code", { text: path })));
		const tbl = el("table", { class: "tbl", id: "versions" });
		v.append(tbl);
		try {
			const j = await api("GET", "/api/v1/versions" + encPath(path));
			tbl.append(el("tr", {}, el("th", { text: "When" }), el("th", { text: "Size" }), el("th", { text: "SHA-256" }),
				el("th", { text: "By" }), el("th")));
			for (const x of j.versions) {
				const act = el("td");
				act.append(el("a", { class: "button", href: "/api/v1/fs" + encPath(path) + "?at=" + encodeURIComponent(x.ts), download: path.split("/").pop() }, "Download"));
				if (x.current)
					act.append(el("span", { class: "tag", text: "current" }));
				else if (!S.readonly)
					act.append(el("button", { type: "button", class: "act-restore", onclick: async () => {
						try {
							await api("POST", "/api/v1/versions" + encPath(path) + "?op=restore&version=" + x.id);
							status("Version of " + fmtTime(x.ts) + " restored.");
							go("#/versions" + encPath(path));
						} catch (e) { status(e.message, true); }
					} }, "Restore"));
				tbl.append(el("tr", { "data-id": x.id }, el("td", { text: fmtTime(x.ts) }), el("td", { text: fmtSize(x.size) }),
					el("td", { class: "hash", text: (x.sha256 || "").slice(0, 12) }), el("td", { text: (x.user || "") + (x.proto ? " (" + x.proto + ")" : "") }), act));
			}
		} catch (e) {
			status(e.message, true);
		}
	},
};

/* ------------------------------------------------------------ trash */

const Trash = {
	async show() {
		const v = $("view");
		v.append(el("h1", { text: "Trash" }));
		const tools = el("div", { class: "tools" });
		if (!S.readonly)
			tools.append(el("button", { type: "button", id: "btn-empty", onclick: async () => {
				if (!confirm("Delete everything in the trash for good?"))
					return;
				try { await api("POST", "/api/v1/trash?op=empty"); go("#/trash"); } catch (e) { status(e.message, true); }
			} }, "Empty the trash"));
		v.append(tools);
		const tbl = el("table", { class: "tbl", id: "trash" });
		v.append(tbl);
		try {
			const j = await api("GET", "/api/v1/trash");
			if (!j.items.length)
				v.append(el("p", { text: "The trash is empty." }));
			tbl.append(el("tr", {}, el("th", { text: "Path" }), el("th", { text: "Deleted" }), el("th", { text: "Size" }), el("th")));
			for (const it of j.items) {
				const act = el("td");
				if (!S.readonly) {
					act.append(el("button", { type: "button", class: "act-restore", onclick: () => this.restore(it, "") }, "Restore"),
						el("button", { type: "button", class: "act-restore-to", onclick: () => {
							const to = prompt("Restore to (full path)", it.path);
							if (to)
								this.restore(it, to);
						} }, "Restore to..."),
						el("button", { type: "button", class: "act-purge", onclick: async () => {
							try { await api("DELETE", "/api/v1/trash/" + it.id); go("#/trash"); } catch (e) { status(e.message, true); }
						} }, "Delete for good"));
				}
				tbl.append(el("tr", { "data-path": it.path }, el("td", { text: it.path + (it.kind === "dir" ? "/ (" + it.files + " files)" : "") }),
					el("td", { text: fmtTime(it.deleted) }), el("td", { text: fmtSize(it.size) }), act));
			}
		} catch (e) {
			status(e.message, true);
		}
	},

	async restore(it, to) {
		try {
			await api("POST", "/api/v1/trash/" + it.id + "?op=restore" + (to ? "&to=" + encodeURIComponent(to) : ""));
			status((to || it.path) + " restored.");
			go("#/trash");
		} catch (e) {
			status(e.status === 409 ? it.path + " exists: use Restore to... and another path." : e.message, true);
		}
	},
};

/* ---------------------------------------------------------- account */

const Account = {
	async show() {
		const v = $("view");
		v.append(el("h1", { text: "Account" }));
		const me = await api("GET", "/api/v1/me").catch(() => null);
		if (me)
			v.append(el("p", { id: "usage", text: "Used " + fmtSize(me.used) + (me.quota ? " of " + fmtSize(me.quota) : " (no quota)") + "." }));
		if (S.readonly) {
			v.append(el("p", { text: "This session is read-only: nothing to change here." }));
			return;
		}
		const pw = el("form", { id: "password-form", class: "inline" },
			el("input", { name: "old", type: "password", placeholder: "current password", required: true, autocomplete: "current-password" }),
			el("input", { name: "new", type: "password", placeholder: "new password", required: true, autocomplete: "new-password" }),
			el("button", { type: "submit" }, "Change password"));
		pw.addEventListener("submit", async (e) => {
			e.preventDefault();
			const f = new FormData(pw);
			try {
				await api("POST", "/api/v1/me/password", { json: { old: f.get("old"), new: f.get("new") } });
				pw.reset();
				status("Password changed. Sessions of other clients that logged in with the old one have ended.");
			} catch (err) {
				status(err.status === 403 ? "The current password is wrong." : err.message, true);
			}
		});
		const tk = el("form", { id: "token-form", class: "inline" },
			el("select", { name: "scope" }, el("option", { value: "rw", text: "read-write" }), el("option", { value: "ro", text: "read-only" })),
			el("input", { name: "days", type: "number", min: 0, placeholder: "expires in days (empty: never)" }),
			el("input", { name: "password", type: "password", placeholder: "your password", required: true, autocomplete: "current-password" }),
			el("button", { type: "submit" }, "New API token"));
		const shown = el("p", { id: "new-token", class: "note", hidden: true });
		tk.addEventListener("submit", async (e) => {
			e.preventDefault();
			const f = new FormData(tk);
			const body = { scope: f.get("scope") };
			if (f.get("days"))
				body.expires = Number(f.get("days")) * 86400;
			/* With the password, not the session: the session's own token
			 * expires, and the server lets no expiring token make a
			 * credential that outlives it. */
			const cred = new TextEncoder().encode(S.user + ":" + f.get("password"));
			let bin = "";
			for (const b of cred)
				bin += String.fromCharCode(b);
			try {
				const j = await api("POST", "/api/v1/me/tokens", { json: body, noLogout: true, headers: { Authorization: "Basic " + btoa(bin) } });
				tk.elements.password.value = "";
				shown.hidden = false;
				shown.replaceChildren("New token (shown once, copy it now): ", el("code", { text: j.token }));
				this.tokens();
			} catch (err) {
				status(err.status === 401 ? "Wrong password." : err.message, true);
			}
		});
		v.append(el("h2", { text: "Password" }), pw, el("h2", { text: "API tokens" }),
			el("p", { class: "info", text: "Each browser login is a token too (read-write, expiring " +
				"after the longest session): revoking one ends that browser session." }),
			tk, shown, el("table", { class: "tbl", id: "tokens" }));
		this.tokens();
	},

	async tokens() {
		const tbl = $("tokens");
		try {
			const j = await api("GET", "/api/v1/me/tokens");
			tbl.replaceChildren(el("tr", {}, el("th", { text: "Id" }), el("th", { text: "Scope" }), el("th", { text: "Created" }),
				el("th", { text: "Expires" }), el("th", { text: "State" }), el("th")));
			for (const x of j.tokens) {
				const act = el("td");
				if (x.state === "active")
					act.append(el("button", { type: "button", class: "act-revoke", onclick: async () => {
						try {
							await api("DELETE", "/api/v1/me/tokens/" + x.id);
							status("Token " + x.id + " revoked.");
							this.tokens();
						} catch (err) { status(err.message, true); }
					} }, "Revoke"));
				tbl.append(el("tr", { "data-id": x.id, "data-state": x.state }, el("td", { text: x.id }), el("td", { text: x.scope }),
					el("td", { text: fmtTime(x.created) }), el("td", { text: x.expires ? fmtTime(x.expires) : "never" }),
					el("td", { text: x.state }), act));
			}
		} catch (err) {
			status(err.message, true);
		}
	},
};

/* ------------------------------------------------------------ admin */

const Admin = {
	async show() {
		const v = $("view");
		v.append(el("h1", { text: "Dashboard" }));
		const dash = el("div", { class: "dash", id: "dash" });
		v.append(dash);
		const form = el("form", { id: "user-form", class: "inline" },
			el("input", { name: "name", placeholder: "user name", required: true, autocomplete: "off" }),
			el("input", { name: "password", type: "password", placeholder: "password", required: true, autocomplete: "new-password" }),
			el("input", { name: "quota", placeholder: "quota (e.g. 10G, empty = none)" }),
			el("label", {}, el("input", { name: "admin", type: "checkbox" }), " admin"),
			el("button", { type: "submit" }, "Create user"));
		form.addEventListener("submit", (e) => { e.preventDefault(); this.create(form); });
		v.append(el("h1", { text: "Users" }), form);
		const tbl = el("table", { class: "tbl", id: "users" });
		v.append(tbl);
		this.dashboard(dash);
		this.users(tbl);
	},

	async dashboard(dash) {
		try {
			const s = await api("GET", "/api/v1/admin/stats");
			const max = Math.max(s.logical_bytes, s.stored_bytes, 1);
			const bar = (label, n, cls) => {
				const b = el("div", { class: "bar " + cls });
				b.style.width = Math.max(0.5, n * 100 / max) + "%";
				return el("div", { class: "barrow" }, el("span", { class: "barlabel", text: label + ": " + fmtSize(n) }), el("div", { class: "bartrack" }, b));
			};
			dash.append(bar("logical", s.logical_bytes, "logical"), bar("stored", s.stored_bytes, "stored"),
				el("p", { id: "dash-figures", text: "Dedup saving: " + fmtSize(Math.max(0, s.logical_bytes - s.stored_bytes)) +
					" (ratio " + s.dedup_ratio + "); " + s.files + " files, " + s.dirs + " folders, " + s.users + " users, " +
					s.versions + " versions, " + s.deleted + " deleted." }));
		} catch (e) {
			dash.append(el("p", { class: "error", text: "stats: " + e.message }));
		}
		try {
			const r = await api("GET", "/metrics", { raw: true });
			if (!r.ok)
				return;
			const text = await r.text();
			const per = {};
			for (const line of text.split("\n")) {
				const m = /^storaged_bytes_(received|sent)_total\{frontend="([a-z]+)"\} ([0-9.e+]+)$/.exec(line);
				if (m)
					(per[m[2]] = per[m[2]] || { received: 0, sent: 0 })[m[1]] = Number(m[3]);
			}
			const max = Math.max(1, ...Object.values(per).map((x) => Math.max(x.received, x.sent)));
			const box = el("div", { id: "dash-transfers" }, el("h2", { text: "Transfers per protocol (since start)" }));
			for (const [fe, x] of Object.entries(per))
				for (const dir of ["received", "sent"]) {
					const b = el("div", { class: "bar " + dir });
					b.style.width = Math.max(0.5, x[dir] * 100 / max) + "%";
					box.append(el("div", { class: "barrow" }, el("span", { class: "barlabel", text: fe + " " + dir + ": " + fmtSize(x[dir]) }), el("div", { class: "bartrack" }, b)));
				}
			dash.append(box);
		} catch (e) { /* metrics off: no chart */ }
	},

	parseSize(s) {
		const m = /^\s*([0-9.]+)\s*([KMGT]?)i?B?\s*$/i.exec(s || "");
		if (!m)
			return null;
		return Math.round(Number(m[1]) * Math.pow(1024, " KMGT".indexOf((m[2] || " ").toUpperCase())));
	},

	async create(form) {
		const f = new FormData(form);
		const body = { name: f.get("name"), password: f.get("password"), admin: f.get("admin") === "on" };
		if (f.get("quota")) {
			const q = this.parseSize(f.get("quota"));
			if (q === null)
				return status("quota: a size such as 10G", true);
			body.quota = q;
		}
		try {
			await api("POST", "/api/v1/admin/users", { json: body });
			status("User " + body.name + " created.");
			go("#/admin");
		} catch (e) {
			status(e.message, true);
		}
	},

	async patch(name, body, done) {
		try {
			await api("PATCH", "/api/v1/admin/users/" + encodeURIComponent(name), { json: body });
			status(done);
			go("#/admin");
		} catch (e) {
			status(e.message, true);
		}
	},

	async users(tbl) {
		try {
			const j = await api("GET", "/api/v1/admin/users");
			tbl.append(el("tr", {}, el("th", { text: "User" }), el("th", { text: "Used" }), el("th", { text: "Quota" }), el("th", { text: "State" }), el("th")));
			for (const u of j.users) {
				const act = el("td",{},
					el("button", { type: "button", class: "act-disable", onclick: () => this.patch(u.name, { disabled: !u.disabled }, u.name + (u.disabled ? " enabled." : " disabled.")) }, u.disabled ? "Enable" : "Disable"),
					el("button", { type: "button", class: "act-quota", onclick: () => {
						const q = prompt("Quota for " + u.name + " (e.g. 10G, 0 = none)", u.quota ? fmtSize(u.quota).replace(" ", "") : "0");
						if (q === null) return;
						const n = this.parseSize(q);
						if (n === null) return status("quota: a size such as 10G", true);
						this.patch(u.name, { quota: n }, "Quota of " + u.name + " set.");
					} }, "Quota"),
					el("button", { type: "button", class: "act-password", onclick: () => {
						const p = prompt("New password for " + u.name);
						if (p) this.patch(u.name, { password: p }, "Password of " + u.name + " reset.");
					} }, "Reset password"));
				tbl.append(el("tr", { "data-user": u.name }, el("td", { text: u.name + (u.admin ? " (admin)" : "") }), el("td", { text: fmtSize(u.used) }),
					el("td", { text: u.quota ? fmtSize(u.quota) : "none" }), el("td", { text: u.disabled ? "disabled" : "active" }), act));
			}
		} catch (e) {
			status(e.message, true);
		}
	},
};

/* ------------------------------------------------------------- start */

async function start() {
	if (!window.Sha256 || !window.sha256SelfTest())
		status("SHA-256 self-test failed: uploads disabled", true);
	$("login").addEventListener("submit", doLogin);
	$("logout").addEventListener("click", doLogout);
	window.addEventListener("hashchange", route);
	setupDrop();
	try {
		const j = await api("GET", "/api/v1/session", { noLogout: true });
		loggedIn(j);
	} catch (e) {
		loggedOut("");
	}
	document.body.dataset.ready = "1";
}

start();
