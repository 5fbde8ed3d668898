export function debounce(fn, delay) {
  let timer = null;
  function debounced(...args) {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      fn(...args);
    }, delay);
  }
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

export function requireElement(value, name) {
  if (!(value instanceof Element)) {
    throw new TypeError(`EldercareStudio: ${name} must be a DOM element`);
  }
}

/** Put a short error message in a container (text only: the message may come from the input). */
export function showError(container, message) {
  let box = container.querySelector(':scope > .studio-error');
  if (!box) {
    box = document.createElement('p');
    box.className = 'studio-error';
    box.setAttribute('role', 'alert');
    container.prepend(box);
  }
  box.textContent = message;
}

export function clearError(container) {
  const box = container.querySelector(':scope > .studio-error');
  if (box) box.remove();
}
