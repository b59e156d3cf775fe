// Tiny DOM helpers. Everything is built with createElement/textContent so that user data can
// never become markup (no innerHTML anywhere in the client).

/**
 * h("button", {testid: "send", class: "primary", on: {click}}, "text", childNode)
 * Props: class, text, testid, data (dataset), attrs (setAttribute), on (listeners),
 * and any other key is set as a DOM property (type, value, disabled, hidden, ...).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key === "data") for (const [k, v] of Object.entries(value)) { if (v != null) el.dataset[k] = v; }
    else if (key === "attrs") for (const [k, v] of Object.entries(value)) { if (v != null && v !== false) el.setAttribute(k, v === true ? "" : v); }
    else if (key === "on") for (const [k, fn] of Object.entries(value)) el.addEventListener(k, fn);
    else el[key] = value;
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replace all children of `el` with `children`. */
export function fill(el, ...children) {
  clear(el);
  return append(el, children);
}

/** A visually hidden text for screen readers. */
export function srOnly(text) {
  return h("span", { class: "sr-only", text });
}

/** A label + control pair; the label is a real <label for> so every input is named. */
let idCounter = 0;
export function field(labelText, control, extraClass = "") {
  if (!control.id) control.id = `f${++idCounter}`;
  return h("div", { class: `field ${extraClass}`.trim() },
    h("label", { htmlFor: control.id, text: labelText }), control);
}

export function uid() {
  return `f${++idCounter}`;
}
