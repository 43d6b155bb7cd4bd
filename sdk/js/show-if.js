// Part of the interest module's glue (`script-interests.js`, `npm-interests.js`), loaded
// after `ready`: what keeps `data-portrait-show-if` elements decided in a single-page app.

/** Calls `decide` (once per 50 ms at most) after the page's DOM changed, while it has
 * `data-portrait-show-if` elements: an app renders them after its view was read, or sets
 * the attribute. The observer's own work is a look at the records' kinds; the search for
 * the elements waits for the timer. */
export function watchShowIf(decide) {
  if (typeof MutationObserver !== 'function') return;
  let waiting = false;
  const elementsOrConditions = (record) =>
    record.type === 'attributes' || Array.prototype.some.call(record.addedNodes, (node) => node.nodeType === 1);
  // The prototype's getter: a form named `documentElement` replaces the document's.
  const root = Reflect.get(Object.getPrototypeOf(document), 'documentElement', document);
  new MutationObserver((records) => {
    if (waiting || !records.some(elementsOrConditions)) return;
    waiting = true;
    setTimeout(() => {
      waiting = false;
      // The prototype's `querySelector`: an element named `querySelector` replaces the
      // document's, and this timer's throw would reach the page.
      try {
        if (Object.getPrototypeOf(document).querySelector.call(document, '[data-portrait-show-if]')) decide();
      } catch {}
    }, 50);
  }).observe(root, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-portrait-show-if'] });
}
