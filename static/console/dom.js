// Tiny DOM helpers. Every piece of text goes through text nodes (textContent), never
// innerHTML, so customer or agent text can never become markup.

/**
 * Builds an element. `attrs`: `class`, `text`, `dataset` (object), `on` (object of
 * listeners), `hidden`, `disabled`, any other key becomes an attribute (skipped when
 * null/false). Children: nodes, strings (as text) or arrays of them; null is skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'hidden' || k === 'disabled' || k === 'checked' || k === 'required') el[k] = Boolean(v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
const ICONS = {
  menu: ['M3 6h18', 'M3 12h18', 'M3 18h18'],
  back: ['M15 18l-6-6 6-6'],
  send: ['M22 2L11 13', 'M22 2l-7 20-4-9-9-4 20-7z'],
  lock: ['M5 11h14v10H5z', 'M8 11V7a4 4 0 0 1 8 0v4'],
  clock: ['M12 7v5l3 2', 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z'],
  help: ['M9.1 9a3 3 0 0 1 5.8 1c0 2-3 3-3 3', 'M12 17h.01', 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z'],
  inbox: ['M22 12h-6l-2 3h-4l-2-3H2', 'M5.5 5h13L22 12v7H2v-7z'],
  chat: ['M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z'],
  x: ['M18 6L6 18', 'M6 6l12 12'],
  chevron: ['M6 9l6 6 6-6'],
};

/** A stroked 24×24 icon. */
export function icon(name, cls = '') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', `icon ${cls}`.trim());
  for (const d of ICONS[name] || []) {
    const p = document.createElementNS(SVG, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
  }
  return svg;
}

/** Two letters and a stable colour class for a person or visitor. */
export function avatar(label, key, cls = '') {
  let hash = 0;
  for (const ch of String(key || label)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  const words = String(label).replace(/[^\p{L}\p{N} ]/gu, ' ').trim().split(/\s+/);
  const initials = (words.length > 1 ? words[0][0] + words[1][0] : String(label).slice(0, 2)).toUpperCase();
  return h('span', { class: `avatar hue-${hash % 8} ${cls}`.trim(), 'aria-hidden': 'true', text: initials });
}

/**
 * An autocomplete list for a textarea (the @mention and the /saved-reply lists share
 * one `menu`). find(textBeforeCaret) → {start, items} when the text asks for a list
 * (`start`: where the replaced text begins), else null; row(item, active) → an <li>;
 * insert(item) → the text put in place; picked(): after an insertion. ↑/↓ move, Enter
 * or Tab insert, Escape closes, a click inserts. Returns {update} (to redraw after an
 * asynchronous read).
 */
export function setupPicker(ta, menu, { idPrefix, find, row, insert, picked = () => {} }) {
  let matches = [];
  let active = 0;
  let start = -1;
  const hide = () => {
    menu.hidden = true;
    matches = [];
    ta.removeAttribute('aria-activedescendant');
  };
  const pick = (item) => {
    const pos = ta.selectionStart;
    const before = ta.value.slice(0, start);
    const ins = insert(item);
    ta.value = before + ins + ta.value.slice(pos);
    const caret = before.length + ins.length;
    ta.setSelectionRange(caret, caret);
    hide();
    ta.focus();
    picked();
  };
  const draw = () => {
    fill(menu, matches.map((item, i) => {
      const li = row(item, i === active);
      li.id = `${idPrefix}-${i}`;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', i === active ? 'true' : 'false');
      li.addEventListener('mousedown', (e) => { e.preventDefault(); pick(item); });
      return li;
    }));
    menu.hidden = !matches.length;
    if (matches.length) ta.setAttribute('aria-activedescendant', `${idPrefix}-${active}`);
  };
  const update = () => {
    const found = find(ta.value.slice(0, ta.selectionStart));
    if (!found) return hide();
    start = found.start;
    matches = found.items;
    active = 0;
    draw();
  };
  ta.addEventListener('input', update);
  ta.addEventListener('click', update);
  ta.addEventListener('blur', () => setTimeout(hide, 150));
  ta.addEventListener('keydown', (e) => {
    if (menu.hidden || !matches.length) return;
    if (e.key === 'ArrowDown') { e.preventDefault(); active = (active + 1) % matches.length; draw(); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); active = (active - 1 + matches.length) % matches.length; draw(); }
    else if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); e.stopImmediatePropagation(); pick(matches[active]); }
    else if (e.key === 'Escape') { e.preventDefault(); hide(); }
  });
  return { update: () => { if (document.activeElement === ta) update(); } };
}
