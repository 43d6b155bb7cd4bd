// Part of the interest module's glue (`script-interests.js`, `npm-interests.js`), loaded
// after `ready`: what keeps `data-portrait-show-if` elements decided in a single-page app.

/** Calls `decide` (once per 50 ms at most) when the page adds `data-portrait-show-if`
 * elements or sets that attribute: an app renders them after its view was read. (The
 * module's own changes are to `hidden`, which this does not watch.) */
export function watchShowIf(decide) {
  if (typeof MutationObserver !== 'function') return;
  const SHOW_IF = 'data-portrait-show-if';
  const adds = (node) => node.nodeType === 1 && (node.hasAttribute(SHOW_IF) || node.querySelector(`[${SHOW_IF}]`) !== null);
  let waiting = false;
  new MutationObserver((records) => {
    if (waiting || !records.some((r) => r.type === 'attributes' || Array.from(r.addedNodes).some(adds))) return;
    waiting = true;
    setTimeout(() => {
      waiting = false;
      decide();
    }, 50);
  }).observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: [SHOW_IF] });
}
