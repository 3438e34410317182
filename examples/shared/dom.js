// Small DOM helpers: build elements without innerHTML for anything that carries server data.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function $$(selector, root = document) {
  return Array.from(root.querySelectorAll(selector));
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Shows a message in a live region (role=status or role=alert is set in the HTML). */
export function announce(region, text, tone = 'info') {
  if (!region) return;
  region.textContent = text;
  region.dataset.tone = tone;
  region.hidden = !text;
}

/** Clears field errors inside a form, then marks the field the server named (cvco error `field`). */
export function showFieldError(form, error, lang, fieldMap = {}) {
  clearFieldErrors(form);
  const message = error.localized ? error.localized(lang) : String(error.message || error);
  const fieldName = error.field ? (fieldMap[error.field] ?? error.field) : null;
  const input = fieldName ? form.querySelector(`[name="${CSS.escape(fieldName)}"]`) : null;
  if (input) {
    const id = `${input.id || input.name}-error`;
    const note = h('p', { class: 'field-error', id, role: 'alert' }, message);
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', id);
    (input.closest('.field') || input.parentElement).append(note);
    input.focus();
    return true;
  }
  const general = form.querySelector('.form-error');
  if (general) announce(general, message, 'error');
  return false;
}

export function clearFieldErrors(form) {
  for (const note of form.querySelectorAll('.field-error')) note.remove();
  for (const input of form.querySelectorAll('[aria-invalid]')) {
    input.removeAttribute('aria-invalid');
    input.removeAttribute('aria-describedby');
  }
  const general = form.querySelector('.form-error');
  if (general) announce(general, '');
}

/** Sets a button busy while an async action runs, so a double click sends nothing twice. */
export async function busy(button, action) {
  if (!button) return action();
  if (button.getAttribute('aria-busy') === 'true') return undefined;
  button.setAttribute('aria-busy', 'true');
  button.disabled = true;
  try {
    return await action();
  } finally {
    button.removeAttribute('aria-busy');
    button.disabled = false;
  }
}
