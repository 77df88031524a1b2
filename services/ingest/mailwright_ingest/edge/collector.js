/*! Mailwright browser collector: page views, clicks, scroll depth, form submissions.
 *
 *   <script async src="https://edge.example/c.js" data-write-key="mwk_..."></script>
 *
 * Optional attributes: data-endpoint (another edge origin), data-respect-dnt (send
 * nothing when the browser asks not to be tracked). Events are queued, sent in batches to
 * /v1/batch every few seconds (or at 20 events) when the browser is idle, and with
 * sendBeacon when the page is hidden or unloaded, so tracking never delays the page.
 * Form field values are never collected. window.mailwright.track(name, properties),
 * .identify(userId, traits), .page() and .flush() are there for the page's own calls.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || (window.mailwright && window.mailwright.loaded)) return;
  var writeKey = script.getAttribute("data-write-key");
  if (!writeKey) return;
  if (script.hasAttribute("data-respect-dnt") && navigator.doNotTrack === "1") return;

  var origin = script.getAttribute("data-endpoint") || new URL(script.src).origin;
  var endpoint = origin.replace(/\/$/, "") + "/v1/batch";
  var LIBRARY = { name: "mailwright.js", version: "1" };
  var FLUSH_AFTER_MS = 4000;
  var MAX_BATCH = 20;
  var BEACON_LIMIT = 60000;
  var DEPTHS = [25, 50, 75, 90, 100];
  var queue = [];
  var timer = null;
  var userId = null;
  var reached = {};

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 3) | 8).toString(16);
    });
  }

  function stored(name, make) {
    try {
      var value = localStorage.getItem(name);
      if (!value) {
        value = make();
        localStorage.setItem(name, value);
      }
      return value;
    } catch (e) {
      return make();
    }
  }

  var anonymousId = stored("mw_aid", uuid);
  try {
    userId = localStorage.getItem("mw_uid");
  } catch (e) {}

  function campaign() {
    var out = {};
    var params = new URLSearchParams(location.search);
    ["name", "source", "medium", "term", "content"].forEach(function (part) {
      var value = params.get(part === "name" ? "utm_campaign" : "utm_" + part);
      if (value) out[part] = value.slice(0, 200);
    });
    return out;
  }

  function context() {
    var ctx = {
      library: LIBRARY,
      locale: navigator.language || undefined,
      page: {
        path: location.pathname,
        referrer: document.referrer,
        search: location.search,
        title: document.title.slice(0, 300),
        url: location.href,
      },
      userAgent: navigator.userAgent,
    };
    try {
      ctx.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (e) {}
    var utm = campaign();
    if (Object.keys(utm).length) ctx.campaign = utm;
    return ctx;
  }

  function enqueue(call) {
    call.messageId = uuid();
    call.anonymousId = anonymousId;
    if (userId) call.userId = userId;
    call.timestamp = new Date().toISOString();
    call.context = context();
    queue.push(call);
    if (queue.length >= MAX_BATCH) flush(false);
    else schedule();
  }

  function schedule() {
    if (timer) return;
    timer = setTimeout(function () {
      timer = null;
      if (window.requestIdleCallback) requestIdleCallback(function () { flush(false); });
      else flush(false);
    }, FLUSH_AFTER_MS);
  }

  function flush(leaving) {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    while (queue.length) {
      var batch = queue.splice(0, MAX_BATCH);
      var body = JSON.stringify({ writeKey: writeKey, sentAt: new Date().toISOString(), batch: batch });
      if (leaving && navigator.sendBeacon && body.length < BEACON_LIMIT) {
        // text/plain keeps it a simple request: no CORS preflight.
        if (navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }))) continue;
      }
      send(body, batch, leaving);
    }
  }

  function send(body, batch, leaving) {
    if (!window.fetch) return;
    fetch(endpoint, {
      method: "POST",
      body: body,
      keepalive: leaving && body.length < BEACON_LIMIT,
      headers: { "Content-Type": "text/plain" },
      credentials: "omit",
      mode: "cors",
    }).then(function (response) {
      // 5xx and 429 are worth one more try; 4xx would fail again.
      if ((response.status >= 500 || response.status === 429) && !leaving) retry(batch);
    }, function () {
      if (!leaving) retry(batch);
    });
  }

  function retry(batch) {
    batch.forEach(function (call) {
      if (!call._retried) {
        call._retried = true;
        queue.push(call);
      }
    });
    schedule();
  }

  function page() {
    reached = {};
    enqueue({ type: "page", name: document.title.slice(0, 200), properties: {
      path: location.pathname, url: location.href, title: document.title.slice(0, 300),
      referrer: document.referrer, search: location.search,
    } });
  }

  function track(name, properties) {
    enqueue({ type: "track", event: String(name), properties: properties || {} });
  }

  function identify(id, traits) {
    if (id) {
      userId = String(id);
      try {
        localStorage.setItem("mw_uid", userId);
      } catch (e) {}
    }
    enqueue({ type: "identify", traits: traits || {} });
  }

  // -- clicks on links and buttons
  document.addEventListener("click", function (e) {
    var el = e.target && e.target.closest ? e.target.closest("a,button,[data-mw-track]") : null;
    if (!el) return;
    track("Element Clicked", {
      tag: el.tagName.toLowerCase(),
      text: (el.getAttribute("data-mw-track") || el.innerText || "").trim().slice(0, 100),
      href: el.href ? String(el.href).slice(0, 2000) : undefined,
      element_id: el.id || undefined,
      path: location.pathname,
    });
  }, { capture: true, passive: true });

  // -- form submissions (never the values)
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form || form.tagName !== "FORM") return;
    track("Form Submitted", {
      form_id: form.id || undefined,
      form_name: form.getAttribute("name") || undefined,
      action: form.action ? String(form.action).slice(0, 2000) : undefined,
      method: (form.method || "get").toLowerCase(),
      path: location.pathname,
    });
    flush(true);
  }, { capture: true });

  // -- scroll depth, measured at most once a frame
  var ticking = false;
  function measure() {
    ticking = false;
    var doc = document.documentElement;
    var height = Math.max(doc.scrollHeight, document.body ? document.body.scrollHeight : 0);
    if (!height) return;
    var seen = Math.min(100, Math.round(((window.scrollY + window.innerHeight) / height) * 100));
    DEPTHS.forEach(function (depth) {
      if (seen >= depth && !reached[depth]) {
        reached[depth] = true;
        track("Page Scrolled", { depth: depth, path: location.pathname, url: location.href });
      }
    });
  }
  window.addEventListener("scroll", function () {
    if (!ticking) {
      ticking = true;
      requestAnimationFrame(measure);
    }
  }, { passive: true });

  // -- single-page applications: a page view per navigation
  ["pushState", "replaceState"].forEach(function (name) {
    var original = history[name];
    history[name] = function () {
      var before = location.href;
      var result = original.apply(this, arguments);
      if (location.href !== before) page();
      return result;
    };
  });
  window.addEventListener("popstate", page);

  // -- leaving: send what is queued with sendBeacon
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flush(true);
  });
  window.addEventListener("pagehide", function () { flush(true); });

  window.mailwright = {
    loaded: true,
    track: track,
    identify: identify,
    page: page,
    flush: function () { flush(false); },
  };
  page();
})();
