// The review page's behaviour (docs/review-page.md). stages/review.py writes the data as JSON into #data; this draws
// the cards a page at a time, keeps the person's choices (in localStorage, under the data set's fingerprint), and
// writes and reads them as the CSV `twins export --choices` applies. Names and paths are user data: they are only
// ever set as text (textContent, value), never as HTML or as a link.
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const PAGE = 25;  // cards drawn at a time
const KEY = "evil-twins/review/" + D.fingerprint;  // localStorage: this data set's choices
const HEADER = D.header;
const COL = Object.fromEntries(HEADER.map((h, k) => [h, k]));
D.cards.forEach((card, pos) => { card.queue = pos; });
const byIndex = new Map(D.cards.map(card => [card.index, card]));
const rows = new Map();  // sample index -> its choice as a CSV row (HEADER's columns): what a download writes
let order = [];  // the cards the filters let through, sorted
let cursor = 0;  // the current card's position in order
let drawn = -1;  // the first position of the page drawn
const $ = id => document.getElementById(id);

// ---- names and text --------------------------------------------------------------------------------------------
// Control and bidi characters are shown as \uXXXX, so that a name cannot hide or reorder what is around it.
const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g;
const shown = text => String(text).replace(HIDDEN, ch => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"));
const name = label => (label < 0 ? "unlabelled" : D.classes[label]);
const pct = p => (p === null ? "n/a" : p < 0.01 ? "<1%" : p > 0.99 ? ">99%" : Math.round(100 * p) + "%");

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") e.className = value;
    else if (key === "text") e.textContent = value;
    else if (key.startsWith("on")) e.addEventListener(key.slice(2), value);
    else e.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) e.append(child);
  return e;
}
const label = (value) => el("bdi", {text: shown(name(value))});

function picture(index, size, caption, extra) {
  const [w, h] = D.view[size];
  const img = el("img", {width: w, height: h, alt: "sample " + index, decoding: "async"});
  img.src = D.images[index] || "";
  return el("figure", {class: size + (extra ? " " + extra : "")}, img, caption);
}

// ---- choices ---------------------------------------------------------------------------------------------------
function rowFor(card, choice, value) {
  const newLabel = choice === "remove" ? "" : name(value);
  return [String(card.index), card.path, name(card.given), card.suggested < 0 ? "" : name(card.suggested),
    card.kind, choice, newLabel, D.fingerprint];
}
// A label picked for a card: the given one is "keep", the suggested one "accept", any other "relabel".
function pick(card, value) {
  if (value === card.given) decide(card, "keep", value);
  else if (value === card.suggested) decide(card, "accept", value);
  else decide(card, "relabel", value);
}
function decide(card, choice, value) {
  if (choice === "accept" && card.suggested < 0) return;
  rows.set(card.index, rowFor(card, choice, value));
  changed(card);
}
function undo(card) { rows.delete(card.index); changed(card); }
function changed(card) {
  save();
  const node = $("card-" + card.index);
  if (node) node.replaceWith(cardNode(card, node.classList.contains("current")));
  count();
}
function save() {
  try {
    if (rows.size) localStorage.setItem(KEY, JSON.stringify([...rows.values()]));
    else localStorage.removeItem(KEY);
  } catch (err) {
    say("this browser keeps no choices (" + err.name + "): download them before you close the page", true);
  }
}
function classOf(text) {
  let k = D.classes.indexOf(text);
  if (k < 0) k = D.classes.indexOf(text.trim());
  if (k < 0 && /^[0-9]+$/.test(text.trim()) && Number(text.trim()) < D.classes.length) k = Number(text.trim());
  return k < 0 ? null : k;
}
// Rows (a header first) from a CSV or the browser's storage, checked as export checks them and more: made for this
// data set, the same file at each index, no index twice. All or nothing; returns how many rows it took.
function adopt(table, source) {
  const header = table[0] || [];
  const col = Object.fromEntries(header.map((h, k) => [h, k]));
  if (!("index" in col) || !("choice" in col)) throw new Error(source + ": no index and choice columns");
  const found = new Map();
  for (let r = 1; r < table.length; r++) {
    const row = table[r];
    if (row.length === 1 && row[0] === "") continue;  // a blank line
    const get = key => (key in col && row[col[key]] !== undefined ? row[col[key]] : "");
    const where = source + ", row " + (r + 1) + ": ";
    if ("dataset" in col && get("dataset") !== D.fingerprint) {
      throw new Error(where + "made for data set " + shown(get("dataset")) + ", this page shows " + D.fingerprint);
    }
    if (!/^[0-9]+$/.test(get("index")) || Number(get("index")) >= D.samples) {
      throw new Error(where + "index " + shown(get("index")) + " is not a sample of this data set");
    }
    const index = Number(get("index"));
    if (found.has(index)) throw new Error(where + "sample " + index + " is chosen twice");
    const card = byIndex.get(index);
    if (card && "path" in col && get("path") !== card.path) {
      throw new Error(where + "sample " + index + " is " + shown(card.path) + " here, not " + shown(get("path")));
    }
    const choice = get("choice");
    if (!D.choices.includes(choice)) throw new Error(where + "choice " + shown(choice) + " is not one of the four");
    let value = choice === "keep" && card ? card.given : null;
    if (choice === "accept" || choice === "relabel") {
      value = classOf(get("new_label"));
      if (value === null) throw new Error(where + "new_label " + shown(get("new_label")) + " is not a class here");
      if (card && choice === "accept" && card.suggested < 0) {
        throw new Error(where + "sample " + index + " has no suggestion");
      }
    }
    found.set(index, card ? rowFor(card, choice, value) : HEADER.map(h => (h === "dataset" ? D.fingerprint : get(h))));
  }
  for (const [index, row] of found) rows.set(index, row);
  return found.size;
}
function restore() {
  let stored = null;
  try { stored = JSON.parse(localStorage.getItem(KEY) || "null"); } catch (err) { stored = null; }
  if (!Array.isArray(stored) || !stored.length) return;
  try {
    say(adopt([HEADER, ...stored], "this browser's storage") + " choices restored from this browser's storage");
  } catch (err) {
    say(err.message + " (stored choices not restored)", true);
  }
}

// ---- the CSV ---------------------------------------------------------------------------------------------------
const quote = field => (/[",\r\n]/.test(field) ? '"' + field.replace(/"/g, '""') + '"' : field);
function csvText() {
  const body = [...rows.keys()].sort((a, b) => a - b).map(index => rows.get(index));
  return [HEADER, ...body].map(row => row.map(quote).join(",")).join("\n") + "\n";
}
// RFC 4180, as Python's csv module writes it: quoted fields keep their commas, quotes and line breaks (a CR too).
function parseCsv(text) {
  const table = [];
  let row = [], field = "", quoted = false, fresh = true;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch !== '"') field += ch;
      else if (text[i + 1] === '"') { field += '"'; i++; }
      else quoted = false;
    } else if (ch === '"' && fresh) { quoted = true; fresh = false; }
    else if (ch === ",") { row.push(field); field = ""; fresh = true; }
    else if (ch === "\n" || ch === "\r") {
      row.push(field); table.push(row); row = []; field = ""; fresh = true;
      if (ch === "\r" && text[i + 1] === "\n") i++;
    } else { field += ch; fresh = false; }
  }
  if (field !== "" || row.length || !fresh) { row.push(field); table.push(row); }
  return table;
}
function download() {
  const link = el("a", {download: "review-choices.csv"});
  link.href = URL.createObjectURL(new Blob([csvText()], {type: "text/csv"}));
  document.body.append(link); link.click(); link.remove();
  say(rows.size + " choices downloaded as review-choices.csv");
}
function load(file) {
  file.text().then(text => {
    try {
      const n = adopt(parseCsv(text.replace(/^\ufeff/, "")), file.name);
      save(); refresh();
      say(n + " choices loaded from " + shown(file.name));
    } catch (err) { say(err.message, true); }
  });
}
function clearAll() {
  if (!rows.size || !confirm("Forget all " + rows.size + " choices? Download them first to keep them.")) return;
  rows.clear(); save(); refresh();
  say("choices cleared");
}
function say(text, bad) { $("status").textContent = text; $("status").className = bad ? "bad" : ""; }

// ---- one card --------------------------------------------------------------------------------------------------
const REASONS = {
  twin: "its twins carry other labels; the evidence favours one of them",
  wrong_label: "the members read it as another class",
  outlier: "unlike every class",
  odd: "a broken image",
  look: "not flagged, but its label may be wrong",
};
function strip(caption, items) {
  return el("div", {class: "strip"}, el("span", {class: "caption"}, ...caption), ...items);
}
function compareNode(card) {
  const box = el("div", {class: "compare"});
  const classes = [card.given, card.suggested].filter((k, n, all) => k >= 0 && all.indexOf(k) === n);
  for (const k of classes) {
    const typical = D.strips[k] || [];
    box.append(strip(typical.length ? [label(k), " here looks like"] : ["no trusted ", label(k), " to compare with"],
      typical.map(j => picture(j, "thumb", el("figcaption", {text: "#" + j})))));
  }
  if (card.near.length) {
    box.append(strip(["nearest pictures"], card.near.map(([j, k]) =>
      picture(j, "thumb", el("figcaption", {}, "#" + j + " ", label(k))))));
  }
  return box;
}
function evidenceNode(card) {
  const box = el("div", {class: "evidence"});
  const labels = el("p", {class: "labels"}, label(card.given));
  if (card.suggested >= 0) labels.append(" \u2192 ", el("span", {class: "suggested"}, label(card.suggested)));
  box.append(labels);
  const why = el("p", {class: "why"}, el("span", {class: "kind " + card.kind, text: D.kinds[card.kind]}), " ",
    REASONS[card.kind] + (card.odd ? " (" + card.odd + ")" : ""));
  box.append(why);
  const odds = el("p", {class: "odds"});
  if (card.wrong !== null && card.given >= 0) {
    odds.append(el("span", {}, "label wrong: ", el("b", {text: pct(card.wrong)})));
  }
  for (const [n, [k, p]] of card.top.entries()) {
    if (n >= 2 && p < 0.01) continue;
    const bar = el("i", {class: "bar", style: "width:" + Math.round(40 * p) + "px"});
    odds.append(el("span", {}, bar, label(k), " " + pct(p)));
  }
  if (odds.children.length) box.append(odds);
  if (card.twins.length) {
    box.append(strip([card.suggested >= 0 ? "twins (green: the copies the tool trusts)" : "twins"],
      card.twins.map(([j, k, ok]) => picture(j, "thumb", el("figcaption", {}, "#" + j + " ", label(k)),
        card.suggested >= 0 ? (ok ? "trusted" : "distrusted") : ""))));
    if (card.more_twins) box.append(el("p", {class: "path", text: "+" + card.more_twins + " more twins"}));
  }
  if (card.path) box.append(el("p", {class: "path", text: shown(card.path)}));
  return box;
}
function choiceNode(card) {
  const row = rows.get(card.index);
  const choice = row ? row[COL.choice] : "";
  const box = el("div", {class: "choice"});
  const button = (what, key, text, action) => {
    const b = el("button", {type: "button", class: choice === what ? "on" : "", title: "key " + key, onclick: action},
      el("kbd", {text: key}), " ", ...text);
    box.append(b);
    return b;
  };
  if (card.suggested >= 0) {
    button("accept", "a", ["accept ", label(card.suggested)], () => decide(card, "accept", card.suggested));
  }
  button("keep", "k", ["keep ", label(card.given)], () => decide(card, "keep", card.given));
  const select = el("select", {"aria-label": "relabel as", class: choice === "relabel" ? "on" : ""},
    el("option", {value: "", text: "relabel as\u2026"}));
  D.classes.forEach((n, k) => {
    select.append(el("option", {value: String(k), text: (k < 10 ? k + ": " : "") + shown(n)}));
  });
  if (choice === "relabel") select.value = String(classOf(row[COL.new_label]));
  select.addEventListener("change", () => { if (select.value !== "") pick(card, Number(select.value)); });
  box.append(select);
  const typed = el("input", {type: "text", class: "typed", list: "class-list", placeholder: "type a class (r)",
    "aria-label": "type a class", size: 14});
  typed.addEventListener("keydown", event => {
    if (event.key !== "Enter") return;
    const k = typedClass(typed.value);
    if (k === null) { typed.classList.add("bad"); say("no single class matches " + shown(typed.value), true); return; }
    event.preventDefault(); typed.blur(); pick(card, k); move(1);
  });
  box.append(typed);
  button("remove", "x", ["remove"], () => decide(card, "remove", null));
  if (row) {
    box.append(el("span", {class: "verdict"}, choice, choice === "remove" || choice === "keep" ? "" : " as ",
      choice === "remove" || choice === "keep" ? "" : el("bdi", {text: shown(row[COL.new_label])})));
    button("", "u", ["undo"], () => undo(card));
  }
  return box;
}
function cardNode(card, current) {
  const node = el("article", {class: "card" + (rows.has(card.index) ? " decided" : "") + (current ? " current" : ""),
    id: "card-" + card.index, "data-index": card.index, "data-kind": card.kind,
    onclick: () => { const pos = order.indexOf(card); if (pos >= 0 && pos !== cursor) focusCard(pos, false); }});
  const first = picture(card.index, "large", el("figcaption", {text: "#" + card.index}));
  node.append(first, evidenceNode(card), compareNode(card), choiceNode(card));
  return node;
}
// A typed class: its exact name, else the one name that starts so (case and line breaks aside), else a class id.
function typedClass(text) {
  const plain = s => s.replace(/[\r\n]/g, "").trim().toLowerCase();
  const want = plain(text);
  if (!want) return null;
  const exact = D.classes.map(plain).flatMap((n, k) => (n === want ? [k] : []));
  if (exact.length === 1) return exact[0];
  const starts = D.classes.map(plain).flatMap((n, k) => (n.startsWith(want) ? [k] : []));
  if (starts.length === 1) return starts[0];
  return /^[0-9]+$/.test(want) && Number(want) < D.classes.length ? Number(want) : null;
}

// ---- the list: filters, sorting, pages -------------------------------------------------------------------------
function filters() {
  const kinds = Object.keys(D.kinds).map(k => [k, D.cards.filter(c => c.kind === k).length]).filter(([, n]) => n);
  const box = $("filters");
  for (const [k, n] of kinds) {
    box.append(el("label", {}, el("input", {type: "checkbox", class: "kind-filter", value: k, checked: ""}),
      " " + D.kinds[k] + " (" + n + ")"));
  }
  const cls = el("select", {id: "class-filter"}, el("option", {value: "", text: "all"}));
  D.classes.forEach((n, k) => cls.append(el("option", {value: String(k), text: shown(n)})));
  const sort = el("select", {id: "sort"});
  for (const [value, text] of [["queue", "the tool's order"], ["wrong-desc", "label wrong, likeliest first"],
    ["wrong-asc", "label wrong, least likely first"], ["class", "given class"], ["index", "sample index"]]) {
    sort.append(el("option", {value, text}));
  }
  box.append(el("label", {}, "class ", cls), el("label", {}, "label wrong at least ",
    el("input", {type: "number", id: "min-wrong", min: 0, max: 1, step: 0.05, value: 0, size: 4})),
  el("label", {}, el("input", {type: "checkbox", id: "undecided"}), " undecided only"),
  el("label", {}, "sort by ", sort));
  box.addEventListener("change", event => {
    event.target.blur();  // the keys work on the cards again at once
    cursor = 0;
    refresh();
  });
}
function refresh() {
  order = listed();
  cursor = Math.max(0, Math.min(cursor, order.length - 1));
  draw(true);
  if (order.length) focusCard(cursor, false);
  count();
}
function listed() {
  const kinds = new Set([...document.querySelectorAll(".kind-filter:checked")].map(b => b.value));
  const cls = $("class-filter").value === "" ? null : Number($("class-filter").value);
  const least = Number($("min-wrong").value) || 0;
  const undecided = $("undecided").checked;
  const list = D.cards.filter(c => kinds.has(c.kind) && (cls === null || c.given === cls || c.suggested === cls) &&
    (least <= 0 || (c.wrong !== null && c.wrong >= least)) && !(undecided && rows.has(c.index)));
  const wrong = c => (c.wrong === null ? -1 : c.wrong);
  const by = {
    queue: (a, b) => a.queue - b.queue,
    "wrong-desc": (a, b) => wrong(b) - wrong(a) || a.queue - b.queue,
    "wrong-asc": (a, b) => wrong(a) - wrong(b) || a.queue - b.queue,
    class: (a, b) => a.given - b.given || a.queue - b.queue,
    index: (a, b) => a.index - b.index,
  }[$("sort").value];
  return list.sort(by);
}
function draw(force) {
  const start = Math.floor(cursor / PAGE) * PAGE;
  if (start !== drawn || force) {
    $("cards").replaceChildren(...order.slice(start, start + PAGE).map((c, n) => cardNode(c, start + n === cursor)));
    if (!order.length) {
      $("cards").append(el("p", {text: D.cards.length ? "No card passes these filters." : "Nothing to review."}));
    }
    drawn = start;
    const pages = Math.max(1, Math.ceil(order.length / PAGE));
    const off = {disabled: ""};
    const page = start / PAGE + 1;
    $("pager").replaceChildren(
      el("button", {type: "button", onclick: () => focusCard(start - PAGE, true), ...(page > 1 ? {} : off)},
        "previous page"),
      el("span", {text: "page " + page + " of " + pages + " (cards " + (order.length ? start + 1 : 0) + "\u2013" +
        Math.min(start + PAGE, order.length) + " of " + order.length + ")"}),
      el("button", {type: "button", onclick: () => focusCard(start + PAGE, true), ...(page < pages ? {} : off)},
        "next page"));
  }
}
function focusCard(pos, scroll) {
  if (!order.length) return;
  cursor = Math.max(0, Math.min(order.length - 1, pos));
  draw(false);
  for (const node of document.querySelectorAll(".card.current")) node.classList.remove("current");
  const node = $("card-" + order[cursor].index);
  node.classList.add("current");
  if (scroll) node.scrollIntoView({block: "nearest"});
}
const move = delta => focusCard(cursor + delta, true);
const current = () => order[cursor];
function count() {
  const decided = D.cards.filter(c => rows.has(c.index)).length;
  const other = rows.size - decided;
  $("count").textContent = decided + " decided, " + (D.cards.length - decided) + " left" +
    (other ? " (and " + other + " choices for samples without a card here)" : "");
}

// ---- keys --------------------------------------------------------------------------------------------------------
const KEYS = [["\u2192 \u2193 n", "next"], ["\u2190 \u2191 p", "previous"], ["a", "accept"], ["k", "keep"],
  ["x", "remove"], ["0\u20139", "relabel as class 0\u20139"], ["r", "type a class"], ["u", "undo"],
  ["PgDn PgUp", "next/previous page"], ["Home End", "first/last card"]];
document.addEventListener("keydown", event => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.matches("input, select, textarea")) {
    if (event.key === "Escape") target.blur();
    return;
  }
  const card = current();
  const key = event.key;
  if (["ArrowRight", "ArrowDown", "n"].includes(key)) move(1);
  else if (["ArrowLeft", "ArrowUp", "p"].includes(key)) move(-1);
  else if (key === "PageDown") move(PAGE);
  else if (key === "PageUp") move(-PAGE);
  else if (key === "Home") focusCard(0, true);
  else if (key === "End") focusCard(order.length - 1, true);
  else if (!card) return;
  else if (key === "a" && card.suggested >= 0) { decide(card, "accept", card.suggested); move(1); }
  else if (key === "k") { decide(card, "keep", card.given); move(1); }
  else if (key === "x" || key === "Delete") { decide(card, "remove", null); move(1); }
  else if (/^[0-9]$/.test(key) && Number(key) < D.classes.length) { pick(card, Number(key)); move(1); }
  else if (key === "u" || key === "Backspace") { undo(card); focusCard(cursor, false); }
  else if (key === "r" || key === "/") $("card-" + card.index).querySelector("input.typed").focus();
  else return;
  event.preventDefault();
});

// ---- start -------------------------------------------------------------------------------------------------------
(function start() {
  const looks = D.cards.filter(c => c.kind === "look").length;
  $("summary").append(el("strong", {text: D.cards.length + " cards among " + D.samples + " samples"}),
    ": the flagged ones first, most certain first" +
    (looks ? ", then " + looks + " worth a look, likeliest wrong first" : "") + "." +
    (D.issues > D.cards.length ? " " + (D.issues - D.cards.length) + " more are listed in issues.csv only." : "") +
    (D.estimate ? " The evidence says about " + D.estimate[0] + " labels are wrong (" + D.estimate[1] + " to " +
      D.estimate[2] + ") among the samples without a twin." : ""));
  document.body.classList.toggle("pixelated", D.view.pixelated);
  for (const [key, text] of KEYS) $("keys").append(el("kbd", {text: key}), " " + text + "  ");
  for (const n of D.classes) $("class-list").append(el("option", {value: n}));
  filters();
  $("download").addEventListener("click", download);
  $("clear").addEventListener("click", clearAll);
  $("load").addEventListener("change", event => {
    if (event.target.files[0]) load(event.target.files[0]);
    event.target.value = "";  // the same file can be loaded again
  });
  restore();
  refresh();
  performance.mark("review-ready");
})();
