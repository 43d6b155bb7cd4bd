/* Northwind Cloud demo site: navigation, the demo and login forms, and personalisation computed
 * in the browser with the Portrait SDK (the global `portrait` the snippet defines).
 *
 * Nothing here asks a server what to show: the home page reads the visitor's on-device
 * interests (`portrait.interests({limit})`) and site tags (the `data-portrait-show-if="tag:…"`
 * elements of the "Why am I seeing this?" panel, which the SDK shows or hides), and picks a
 * headline and an order of articles from them. Without the SDK (absent, blocked, slow, or
 * consent refused) every page keeps its default content and nothing throws.
 */
(function () {
  'use strict';

  var doc = document;
  var $ = function (selector, root) { return (root || doc).querySelector(selector); };
  var $$ = function (selector, root) { return Array.prototype.slice.call((root || doc).querySelectorAll(selector)); };
  var attempt = function (work, fallback) {
    try { return work(); } catch (error) { return fallback; }
  };

  /* ---------------------------------------------------------------- the SDK, defensively */

  /** The loaded SDK (not the snippet's stub, which only queues calls), or null. */
  function sdk() {
    var p = window.portrait;
    return p && p.__portrait === true ? p : null;
  }
  /** The SDK or the snippet's stub: calls on either are safe (the stub queues them). */
  function sdkOrStub() {
    var p = window.portrait;
    return p && (p.__portrait === true || p.__stub) ? p : null;
  }
  /** `portrait[name](...args)`, if there is a portrait; false when there is none. */
  function send(name, args) {
    var p = sdkOrStub();
    if (!p || typeof p[name] !== 'function') return false;
    return attempt(function () { p[name].apply(p, args); return true; }, false);
  }

  var sdkReady = false;
  var sdkSlow = false;
  var consentNote = '';

  /* ------------------------------------------------------------------- product lines */

  // Which of the visitor's interests (Topics API taxonomy v2 paths) point at which product.
  // A topic belongs to the line with the longest matching path (so Business & Productivity
  // Software is analytics although it sits under Software, which is devtools).
  var LINES = {
    security: {
      label: 'Security',
      topics: ['/Computers & Electronics/Computer Security'],
      hero: {
        eyebrow: 'Northwind Security',
        title: 'Secure every cloud account',
        lead: 'Find the misconfigurations, exposed secrets and risky permissions attackers look for across AWS, Azure and Google Cloud, and fix what matters first.',
        cta: ['See how Security works', '/product/security.html'],
        secondary: ['Request a security demo', '/demo.html?product=security']
      }
    },
    analytics: {
      label: 'Analytics',
      topics: ['/Computers & Electronics/Enterprise Technology', '/Computers & Electronics/Software/Business & Productivity Software'],
      hero: {
        eyebrow: 'Northwind Analytics',
        title: 'Every team on one trusted set of numbers',
        lead: 'Governed dashboards, a shared semantic layer and self-serve exploration on the data warehouse you already have: business intelligence without the backlog.',
        cta: ['See how Analytics works', '/product/analytics.html'],
        secondary: ['Request an analytics demo', '/demo.html?product=analytics']
      }
    },
    devtools: {
      label: 'DevTools',
      topics: ['/Computers & Electronics/Software', '/Internet & Telecom/Web Services/Web Design & Development', '/Jobs & Education/Education/Computer Education'],
      hero: {
        eyebrow: 'Northwind DevTools',
        title: 'Ship faster with CI that keeps up',
        lead: 'Remote build caching, test sharding and flaky-test quarantine cut pipeline times by 60% on the CI you already use.',
        cta: ['See how DevTools works', '/product/devtools.html'],
        secondary: ['Request a DevTools demo', '/demo.html?product=devtools']
      }
    }
  };
  var LINE_ORDER = ['security', 'analytics', 'devtools'];

  // `interests()` is empty until the SDK's interest module is loaded (after `ready`, when the
  // browser is idle; the `interests` event says when), and has names and paths only with its
  // topic model; without the model, only ids. The topics this site cares about, by id:
  var TOPIC_PATHS = {
    103: '/Business & Industrial', 403: '/Business & Industrial/Business Finance',
    419: '/Business & Industrial/Recruitment & Staffing', 126: '/Computers & Electronics',
    423: '/Computers & Electronics/Computer Security', 436: '/Computers & Electronics/Enterprise Technology',
    137: '/Computers & Electronics/Networking', 140: '/Computers & Electronics/Software',
    439: '/Computers & Electronics/Software/Business & Productivity Software', 149: '/Finance',
    150: '/Finance/Accounting & Auditing', 444: '/Finance/Banking', 215: '/Internet & Telecom',
    533: '/Internet & Telecom/Web Services', 224: '/Internet & Telecom/Web Services/Web Design & Development',
    226: '/Jobs & Education', 538: '/Jobs & Education/Education/Computer Education', 236: '/Jobs & Education/Jobs'
  };

  /** `path` is `topic` or lies under it. */
  function within(path, topic) {
    return path === topic || path.indexOf(topic + '/') === 0;
  }

  /** The product line an interest points at, or null. */
  function lineOf(topic) {
    if (!topic.path) return null;
    var best = null;
    var bestLength = 0;
    LINE_ORDER.forEach(function (line) {
      LINES[line].topics.forEach(function (path) {
        if (within(topic.path, path) && path.length > bestLength) {
          best = line;
          bestLength = path.length;
        }
      });
    });
    return best;
  }

  /* ------------------------------------------------------ what the browser knows */

  /** `[{id, name, path, score}]` from the SDK, checked (anything odd is dropped). */
  function cleanTopics(list) {
    if (!Array.isArray(list)) return [];
    return list.filter(function (t) {
      return t && typeof t.id === 'number' && typeof t.score === 'number' && isFinite(t.score);
    }).map(function (t) {
      var path = typeof t.path === 'string' && t.path ? t.path : TOPIC_PATHS[t.id] || null;
      var name = typeof t.name === 'string' && t.name ? t.name : path ? path.slice(path.lastIndexOf('/') + 1) : 'Topic ' + t.id;
      return { id: t.id, name: name, path: path, score: t.score };
    });
  }

  /** The site tags among the visitor's top five: the panel's tag elements the SDK un-hid. */
  function readTags() {
    return $$('[data-why-tag]').filter(function (el) { return !el.hidden; }).map(function (el) {
      return el.getAttribute('data-why-tag');
    });
  }

  function readState() {
    var p = sdk();
    var state = { sdk: !!p, consent: null, personalisation: false, interests: [], tags: [], page: [] };
    if (!p) return state;
    var consent = attempt(function () { return p.consent.get(); }, null);
    state.consent = consent && typeof consent === 'object' ? consent : null;
    state.personalisation = !state.consent || state.consent.personalization !== 'denied';
    if (state.personalisation) {
      // The top five: what `data-portrait-show-if` and the `interests` event look at too.
      state.interests = cleanTopics(attempt(function () { return p.interests({ limit: 5 }); }, []));
      state.tags = readTags();
    }
    state.page = cleanTopics(attempt(function () { return p.pageTopics(); }, []));
    return state;
  }

  /** The product line to feature: interests mapped to lines (relative to the strongest
   * interest) plus 0.5 for each `product:<line>` site tag; null when nothing points anywhere. */
  function chooseLine(state) {
    var top = state.interests.length ? state.interests[0].score : 0;
    var scores = {};
    var reasons = {};
    LINE_ORDER.forEach(function (line) { scores[line] = 0; reasons[line] = []; });
    state.interests.forEach(function (topic) {
      var line = lineOf(topic);
      if (line && top > 0) {
        scores[line] += topic.score / top;
        reasons[line].push('your interest in ' + topic.name + ' (' + topic.score.toFixed(2) + ')');
      }
    });
    state.tags.forEach(function (tag) {
      var line = tag.indexOf('product:') === 0 ? tag.slice(8) : null;
      if (line && LINES[line]) {
        scores[line] += 0.5;
        reasons[line].push('the site tag ' + tag);
      }
    });
    var best = null;
    LINE_ORDER.forEach(function (line) {
      if (scores[line] > 0 && (!best || scores[line] > scores[best])) best = line;
    });
    return best ? { line: best, score: scores[best], reasons: reasons[best] } : null;
  }

  /* ---------------------------------------------------------------- home: the hero */

  var heroDefault = null;

  function heroParts() {
    return {
      hero: $('#hero'), eyebrow: $('#hero-eyebrow'), title: $('#hero-title'), lead: $('#hero-lead'),
      cta: $('#hero-cta'), secondary: $('#hero-secondary'), note: $('#hero-note')
    };
  }

  function applyHero(choice) {
    var parts = heroParts();
    if (!parts.hero || !parts.title || !parts.cta) return null;
    if (!heroDefault) {
      heroDefault = {
        eyebrow: parts.eyebrow ? parts.eyebrow.textContent : '', title: parts.title.textContent,
        lead: parts.lead ? parts.lead.textContent : '',
        cta: [parts.cta.textContent, parts.cta.getAttribute('href')],
        secondary: parts.secondary ? [parts.secondary.textContent, parts.secondary.getAttribute('href')] : null
      };
    }
    var line = choice ? choice.line : 'default';
    var copy = choice ? LINES[line].hero : heroDefault;
    if (parts.hero.getAttribute('data-line') !== line) {
      parts.hero.setAttribute('data-line', line);
      if (parts.eyebrow) parts.eyebrow.textContent = copy.eyebrow;
      parts.title.textContent = copy.title;
      if (parts.lead) parts.lead.textContent = copy.lead;
      parts.cta.textContent = copy.cta[0];
      parts.cta.setAttribute('href', copy.cta[1]);
      // Autocapture sends data-portrait-* with the click: which variant was clicked.
      parts.cta.setAttribute('data-portrait-variant', line);
      if (parts.secondary && copy.secondary) {
        parts.secondary.textContent = copy.secondary[0];
        parts.secondary.setAttribute('href', copy.secondary[1]);
      }
    }
    if (parts.note) parts.note.hidden = !choice;
    return choice ? 'Headline: ' + LINES[line].label + ', because of ' + choice.reasons.join(' and ') + '.' : null;
  }

  /* ------------------------------------------------------- home: recommended reading */

  /** How well a card fits: its topics against the interests (an interest at or under a card
   * topic counts fully, one above it a quarter), plus the featured line and product tags. */
  function relevance(card, state, choice) {
    var topics = (card.getAttribute('data-topics') || '').split('|').filter(Boolean);
    var line = card.getAttribute('data-line') || '';
    var top = state.interests.length ? state.interests[0].score : 0;
    var score = 0;
    state.interests.forEach(function (interest) {
      if (!interest.path || top <= 0) return;
      var match = 0;
      topics.forEach(function (topic) {
        if (within(interest.path, topic)) match = Math.max(match, 1);
        else if (within(topic, interest.path)) match = Math.max(match, 0.25);
      });
      score += match * interest.score / top;
    });
    if (line && choice && choice.line === line) score += 1;
    if (line && state.tags.indexOf('product:' + line) >= 0) score += 0.5;
    return score;
  }

  function applyReading(state, choice) {
    var list = $('#reading');
    if (!list || !$('#hero')) return null; // only the home page reorders
    var cards = $$('[data-topics]', list);
    cards.forEach(function (card, i) {
      if (!card.hasAttribute('data-order')) card.setAttribute('data-order', String(i));
    });
    var scored = cards.map(function (card) {
      return { card: card, score: relevance(card, state, choice), order: Number(card.getAttribute('data-order')) };
    });
    var personal = scored.some(function (s) { return s.score > 0; });
    scored.sort(function (a, b) {
      return personal && b.score !== a.score ? b.score - a.score : a.order - b.order;
    });
    var changed = scored.some(function (s, i) { return cards[i] !== s.card; });
    if (changed) scored.forEach(function (s) { list.appendChild(s.card); });
    var marked = 0;
    scored.forEach(function (s, i) {
      var badge = $('.for-you', s.card);
      var forYou = personal && i < 3 && s.score >= 0.5;
      if (badge) badge.hidden = !forYou;
      if (forYou) marked += 1;
    });
    var note = $('#reading-note');
    if (note) {
      if (!note.hasAttribute('data-default')) note.setAttribute('data-default', note.textContent);
      note.textContent = personal ? 'Ordered for you, from what you have read on this device.' : note.getAttribute('data-default');
    }
    if (!personal) return null;
    return 'Recommended reading: ordered by your interests' + (marked ? ', ' + marked + ' marked “For you”' : '') + '.';
  }

  /* --------------------------------------------------------------- the demo form */

  var FREE_MAIL = ('gmail.com googlemail.com yahoo.com ymail.com rocketmail.com hotmail.com outlook.com live.com msn.com ' +
    'icloud.com me.com mac.com aol.com proton.me protonmail.com pm.me gmx.com gmx.de gmx.net web.de mail.com ' +
    'mail.ru yandex.ru yandex.com zoho.com qq.com 163.com 126.com fastmail.com hey.com tutanota.com free.fr ' +
    'orange.fr laposte.net libero.it t-online.de').split(' ');

  function isFreeMail(domain) {
    return FREE_MAIL.indexOf(domain) >= 0 || /^(yahoo|hotmail|outlook|live)\.[a-z.]+$/.test(domain);
  }

  function queryParam(name) {
    return attempt(function () { return new URLSearchParams(location.search).get(name); }, null);
  }

  function setupDemoForm() {
    var form = $('#demo-form');
    if (!form) return;
    var product = $('#demo-product');
    var fromUrl = queryParam('product');
    if (product && fromUrl && LINES[fromUrl]) {
      product.value = fromUrl;
      product.setAttribute('data-chosen', 'url');
    }
    if (product) product.addEventListener('change', function () { product.setAttribute('data-chosen', 'visitor'); });

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (typeof form.reportValidity === 'function' && !form.reportValidity()) return;
      var value = function (name) { return String((form.elements[name] && form.elements[name].value) || '').trim(); };
      // Fields are not named `name`, `title`, `id`, `action` or `length`: such a field would
      // shadow the form's own property of that name (DOM clobbering), which the SDK's form
      // autocapture reads.
      var name = value('full_name');
      var email = value('email').toLowerCase();
      var company = value('company');
      var title = value('job_title');
      var employees = value('employees');
      var domain = email.slice(email.lastIndexOf('@') + 1);
      var business = domain.indexOf('.') > 0 && !isFreeMail(domain);

      // Traits only (no user id): the collector resolves the person by email.
      send('identify', [{ name: name, email: email, company: company, title: title, employees: employees }]);
      var properties = { company: company, title: title, employees: employees, product: value('product') || 'unsure', business_email: business };
      var plan = queryParam('plan') || queryParam('topic');
      if (plan) properties.from = plan;
      send('track', ['Demo Requested', properties]);
      if (business) send('group', [domain, { name: company, domain: domain, employees: employees }]);

      form.hidden = true;
      var thanks = $('#demo-thanks');
      if (thanks) {
        $('#demo-thanks-name').textContent = name ? ', ' + name.split(/\s+/)[0] : '';
        $('#demo-thanks-email').textContent = email;
        thanks.hidden = false;
        thanks.focus();
      }
    });
  }

  /** Preselects the demo form's product from the featured line, unless chosen otherwise. */
  function applyDemoForm(choice) {
    var product = $('#demo-product');
    if (!product || product.hasAttribute('data-chosen')) return null;
    product.value = choice ? choice.line : '';
    return choice ? '“Most interested in” preselected: ' + LINES[choice.line].label + ', because of ' + choice.reasons.join(' and ') + '.' : null;
  }

  /* -------------------------------------------------------------------- the login form */

  function setupLoginForm() {
    var form = $('#login-form');
    if (!form) return;
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (typeof form.reportValidity === 'function' && !form.reportValidity()) return;
      var email = String(form.elements.email.value || '').trim().toLowerCase();
      form.elements.password.value = ''; // no real authentication: the password goes nowhere
      send('identify', [email, { email: email }]);
      send('track', ['Signed In']);
      form.hidden = true;
      var done = $('#login-done');
      if (done) {
        $('#login-who').textContent = email;
        done.hidden = false;
        done.focus();
      }
    });
  }

  /* ------------------------------------------------------ "Why am I seeing this?" */

  var panelOpener = null;

  function panel() { return $('#why-panel'); }

  function openPanel(opener) {
    var el = panel();
    if (!el) return;
    panelOpener = opener || null;
    el.hidden = false;
    $$('#why-toggle').forEach(function (b) { b.setAttribute('aria-expanded', 'true'); });
    render();
    var title = $('#why-title');
    if (title) {
      title.setAttribute('tabindex', '-1');
      title.focus();
    }
  }

  function closePanel() {
    var el = panel();
    if (!el || el.hidden) return;
    el.hidden = true;
    $$('#why-toggle').forEach(function (b) { b.setAttribute('aria-expanded', 'false'); });
    if (panelOpener && typeof panelOpener.focus === 'function') panelOpener.focus();
    panelOpener = null;
  }

  function setupPanel() {
    doc.addEventListener('click', function (event) {
      var target = event.target && event.target.closest ? event.target : null;
      if (!target) return;
      var opener = target.closest('[data-why-open]');
      if (opener) {
        var el = panel();
        if (el && !el.hidden && opener.id === 'why-toggle') closePanel();
        else openPanel(opener);
        return;
      }
      if (target.closest('[data-why-close]')) closePanel();
    });
    doc.addEventListener('keydown', function (event) {
      if (event.key === 'Escape') closePanel();
    });
    var revoke = $('#why-revoke');
    var grant = $('#why-grant');
    if (revoke) revoke.addEventListener('click', function () {
      var p = sdkOrStub();
      if (!p || !p.consent) return;
      attempt(function () { p.consent.set({ analytics: false, personalization: false }); });
      consentNote = 'Consent revoked: personalisation stopped, the interests and tags kept in this browser were deleted, and nothing more is sent.';
      render();
    });
    if (grant) grant.addEventListener('click', function () {
      var p = sdkOrStub();
      if (!p || !p.consent) return;
      attempt(function () { p.consent.set({ analytics: true, personalization: true }); });
      consentNote = 'Consent granted: your interests build up again as you read.';
      render();
    });
  }

  function fill(list, items, build) {
    while (list.firstChild) list.removeChild(list.firstChild);
    items.forEach(function (item) { list.appendChild(build(item)); });
  }

  function renderPanel(state, changes) {
    var el = panel();
    if (!el) return;
    var status = $('#why-status');
    var personalised = state.sdk && state.personalisation;
    if (status) {
      var text;
      if (!state.sdk && !sdkOrStub()) text = 'The Portrait SDK is not on this page (or was blocked): you see the default site.';
      else if (!state.sdk) text = sdkSlow
        ? 'The Portrait SDK has not loaded (slow network or blocked): you see the default site.'
        : 'This page works without personalisation. Waiting for the Portrait SDK…';
      else if (!state.personalisation) text = 'Personalisation is off: consent was refused. You see the default site, and no interests are kept in this browser.';
      else text = 'Personalisation is on. It is computed in this browser from the pages you read: nothing was fetched from a server to decide what you see.';
      status.textContent = text;
      status.className = 'why-status' + (personalised ? ' on' : state.sdk ? ' off' : '');
    }

    var interests = $('#why-interests');
    if (interests) {
      var top = state.interests.length ? state.interests[0].score : 1;
      fill(interests, state.interests, function (topic) {
        var li = doc.createElement('li');
        var name = doc.createElement('span');
        name.textContent = topic.name;
        if (topic.path) name.title = topic.path;
        var score = doc.createElement('span');
        score.className = 'score';
        score.textContent = topic.score.toFixed(2);
        var bar = doc.createElement('span');
        bar.className = 'bar';
        var fillBar = doc.createElement('span');
        fillBar.style.width = Math.max(4, Math.round(100 * topic.score / (top || 1))) + '%';
        bar.appendChild(fillBar);
        li.appendChild(name);
        li.appendChild(score);
        li.appendChild(bar);
        return li;
      });
      $('#why-interests-empty').hidden = state.interests.length > 0;
    }
    var tagsEmpty = $('#why-tags-empty');
    if (tagsEmpty) tagsEmpty.hidden = state.tags.length > 0;

    var changed = $('#why-changes');
    if (changed) {
      var shown = $$('[data-portrait-show-if]').filter(function (e) {
        return !e.hidden && !e.hasAttribute('data-why-tag');
      });
      var lines = changes.slice();
      if (shown.length) {
        lines.push(shown.length + (shown.length === 1 ? ' element is' : ' elements are') + ' shown because of your interests or tags (' +
          shown.map(function (e) { return e.getAttribute('data-portrait-show-if'); }).join('; ') + ').');
      }
      changed.textContent = lines.length ? lines.join(' ') : 'Nothing: you see the default content.';
    }

    var about = $('#why-page');
    if (about) {
      about.textContent = state.page.length
        ? state.page.slice(0, 3).map(function (t) { return t.name + ' (' + t.score.toFixed(2) + ')'; }).join(', ')
        : state.sdk ? 'Not classified yet: the topic model loads when the browser is idle.' : 'Unknown without the SDK.';
    }

    var consent = state.consent || {};
    var analytics = $('#why-consent-analytics');
    var personalization = $('#why-consent-personalization');
    if (analytics) analytics.textContent = consent.analytics || (state.sdk ? 'unknown' : 'no SDK');
    if (personalization) personalization.textContent = consent.personalization || (state.sdk ? 'unknown' : 'no SDK');
    var revoke = $('#why-revoke');
    var grant = $('#why-grant');
    var canAsk = !!sdkOrStub();
    if (revoke) revoke.disabled = !canAsk;
    if (grant) grant.disabled = !canAsk;
    var note = $('#why-consent-note');
    if (note && note.textContent !== consentNote) note.textContent = consentNote;
  }

  /* ------------------------------------------------------------------- rendering */

  function render() {
    var state = readState();
    var choice = state.personalisation ? chooseLine(state) : null;
    var changes = [
      attempt(function () { return applyHero(choice); }, null),
      attempt(function () { return applyReading(state, choice); }, null),
      attempt(function () { return applyDemoForm(choice); }, null)
    ].filter(Boolean);
    attempt(function () { renderPanel(state, changes); });
  }

  var pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    setTimeout(function () {
      pending = false;
      render();
    }, 0);
  }

  function markCurrentNav() {
    var here = location.pathname.replace(/\/$/, '/index.html');
    $$('.main-nav a').forEach(function (a) {
      var path = attempt(function () { return new URL(a.href, location.href).pathname; }, '');
      var section = path.replace(/[^/]*$/, '');
      if (path === here) a.setAttribute('aria-current', 'page');
      else if (section.length > 1 && section !== '/product/' && here.indexOf(section) === 0) a.setAttribute('aria-current', 'true');
    });
  }

  function onSdkReady() {
    sdkReady = true;
    var p = sdk();
    if (p) {
      // The top five interests changed (a page was credited, the model arrived, consent withdrawn).
      attempt(function () { p.on('interests', schedule); });
    }
    // Site tags have no event: the SDK shows and hides the show-if elements, so watch those.
    if (typeof MutationObserver === 'function') {
      var observer = new MutationObserver(schedule);
      $$('[data-portrait-show-if]').forEach(function (el) {
        observer.observe(el, { attributes: true, attributeFilter: ['hidden'] });
      });
    }
    schedule();
  }

  function start() {
    attempt(markCurrentNav);
    attempt(setupPanel);
    attempt(setupDemoForm);
    attempt(setupLoginForm);
    render();
    var p = sdkOrStub();
    if (p && typeof p.ready === 'function') {
      attempt(function () { p.ready(onSdkReady); });
      setTimeout(function () {
        if (!sdkReady) {
          sdkSlow = true;
          render();
        }
      }, 5000);
    }
    // Back from the bfcache: the interests may have changed on the pages read since.
    window.addEventListener('pageshow', function (event) { if (event.persisted) schedule(); });
  }

  if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', start);
  else start();
})();
