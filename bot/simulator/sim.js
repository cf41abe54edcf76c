// The chat simulator's page script (no inline script: the console's CSP forbids it).
"use strict";
const BASE = document.body.dataset.base;
const TOKEN = document.body.dataset.token;
const CSRF = document.body.dataset.csrf;  // inside the console: its session's token
const BOT = "机器人";
const NEW_PERSON = "新的人…";
const OTHERS = "其他人";
const MEMBERS = "本群";
const SEND = "发送";
const PLACEHOLDER = "输入消息，如：收到";
const ASK_NAME = "新的人叫什么名字？";
let last = 0;
let people = [];
const logs = {};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

async function call(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json", "X-Sim-Token": TOKEN,
              ...(CSRF ? {"X-CSRF-Token": CSRF} : {})}};
  const response = await fetch(BASE + path, init);
  if (!response.ok) throw new Error(response.status + " " + await response.text());
  return response.json();
}

function speakers(group) {
  const select = el("select", {name: "contact", "aria-label": "发言人"});
  const mine = el("optgroup", {label: MEMBERS});
  const inGroup = new Set(group.members.map(m => m.contact));
  for (const m of group.members) mine.append(el("option", {value: m.contact}, m.name));
  const others = el("optgroup", {label: OTHERS});
  for (const p of people) if (!inGroup.has(p.contact)) others.append(el("option", {value: p.contact}, p.name));
  others.append(el("option", {value: ""}, NEW_PERSON));
  select.append(mine, others);
  return select;
}

function column(group) {
  const log = el("div", {class: "log", "data-room": group.room});
  logs[group.room] = log;
  const text = el("input", {name: "text", placeholder: PLACEHOLDER, autocomplete: "off",
                            "aria-label": "消息"});
  const form = el("form", {"data-room": group.room}, speakers(group),
                  el("div", {class: "row"}, text, el("button", {type: "submit"}, SEND)));
  form.addEventListener("submit", async event => {
    event.preventDefault();
    const contact = form.elements.contact.value;
    const body = {room: group.room, contact, text: text.value};
    if (!contact) {
      body.name = (prompt(ASK_NAME) || "").trim();
      if (!body.name) return;
    }
    if (!body.text.trim()) return;
    text.value = "";
    try { await call("/say", body); await poll(); if (!contact) await load(); }
    catch (e) { document.getElementById("error").textContent = e.message; }
  });
  return el("section", {class: "group", "data-room": group.room, "data-title": group.title},
            el("h2", {}, group.title, el("small", {}, group.node)), log, form);
}

function show(m) {
  const log = logs[m.room];
  if (!log) return;
  const who = m.bot ? BOT : m.who;
  log.append(el("div", {class: "msg " + (m.bot ? "bot" : "me"), "data-id": String(m.id)},
                el("div", {class: "who"}, who + " · " + m.at), el("div", {class: "text"}, m.text)));
  log.scrollTop = log.scrollHeight;
}

async function poll() {
  const data = await call("/messages?after=" + last);
  for (const m of data.messages) { show(m); last = Math.max(last, m.id); }
  document.getElementById("clock").textContent = data.now;
}

async function load() {
  const state = await call("/state");
  people = state.people;
  const main = document.getElementById("groups");
  main.replaceChildren(...state.groups.map(column));
  document.getElementById("clock").textContent = state.now;
  last = 0;
  await poll();
}

for (const button of document.querySelectorAll("header button")) {
  button.addEventListener("click", async () => {
    try {
      const data = await call("/clock", {minutes: Number(button.dataset.minutes)});
      document.getElementById("clock").textContent = data.now;
      await poll();
    } catch (e) { document.getElementById("error").textContent = e.message; }
  });
}

load().then(() => setInterval(() => poll().catch(() => {}), 1000));
