/* Global Vision Warehouse: offline behaviour for GX Data Docs (self-written, no dependencies).
 *
 * GX's pages call jQuery, Bootstrap's tabs/collapse and bootstrap-table, all loaded from
 * CDNs. The auditors' copy must work without a network, so orchestration/quality/offline.py
 * replaces those script tags with this file, which provides the small subset the GX
 * templates use: $(fn), $(selector) with each/parent/show/hide/fadeIn/fadeOut/addClass/
 * removeClass/on/prepend/data/modal, .bootstrapTable({columns, data, ...}) rendering a
 * plain sortable, searchable table with clickable rows, Bootstrap's data-toggle="tab" and
 * data-toggle="collapse", and a vegaEmbed stand-in (charts need Vega, which is not vendored).
 */
(function () {
  "use strict";
  var readyQueue = [];
  function onReady(fn) {
    if (document.readyState === "loading") { readyQueue.push(fn); } else { fn(); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    readyQueue.splice(0).forEach(function (fn) { fn(); });
  });

  function Q(nodes) { this.nodes = nodes; this.length = nodes.length; }
  function $(sel) {
    if (typeof sel === "function") { onReady(sel); return new Q([]); }
    if (sel instanceof Q) { return sel; }
    if (sel === document || sel === window || (sel && sel.nodeType === 1)) { return new Q([sel]); }
    try { return new Q(Array.prototype.slice.call(document.querySelectorAll(sel))); }
    catch (e) { return new Q([]); }
  }
  Q.prototype.ready = function (fn) { onReady(fn); return this; };
  Q.prototype.each = function (fn) {
    this.nodes.forEach(function (n, i) { fn.call(n, i, n); }); return this;
  };
  Q.prototype.parent = function () {
    return new Q(this.nodes.map(function (n) { return n.parentElement; }).filter(Boolean));
  };
  Q.prototype.show = Q.prototype.fadeIn = function () {
    this.nodes.forEach(function (n) { n.style.display = ""; }); return this;
  };
  Q.prototype.hide = Q.prototype.fadeOut = function () {
    this.nodes.forEach(function (n) { n.style.display = "none"; }); return this;
  };
  Q.prototype.addClass = function (c) { this.nodes.forEach(function (n) { n.classList.add(c); }); return this; };
  Q.prototype.removeClass = function (c) { this.nodes.forEach(function (n) { n.classList.remove(c); }); return this; };
  Q.prototype.attr = function (name) { return this.nodes.length ? this.nodes[0].getAttribute(name) : undefined; };
  Q.prototype.data = function (key) { return this.attr("data-" + key); };
  Q.prototype.prepend = function (html) {
    this.nodes.forEach(function (n) { n.insertAdjacentHTML("afterbegin", html); }); return this;
  };
  Q.prototype.modal = function () { return this; };
  Q.prototype.on = function (event, handler) {
    this.nodes.forEach(function (n) {
      if (event === "click-row.bs.table") {
        (n._gvwRowHandlers = n._gvwRowHandlers || []).push(handler);
      } else if (event.indexOf(".") === -1) {
        n.addEventListener(event, handler);
      }
    });
    return this;
  };
  Q.prototype.bootstrapTable = function (options) {
    if (typeof options === "string") {  // clearFilterControl, resetSearch, ...
      this.nodes.forEach(function (n) { if (n._gvwSearch) { n._gvwSearch.value = ""; n._gvwFilter(""); } });
      return this;
    }
    this.nodes.forEach(function (table) { renderTable(table, options || {}); });
    return this;
  };

  function callNamed(name, args) {
    var fn = typeof name === "function" ? name : window[name];
    return typeof fn === "function" ? fn.apply(null, args) : null;
  }

  function renderTable(table, options) {
    var columns = (options.columns || []).filter(function (c) { return c.visible !== false; });
    var rows = (options.data || []).slice();
    var sortColumn = columns.filter(function (c) { return c.field === options.sortName; })[0];
    var sortKey = sortColumn ? (sortColumn.sortName || sortColumn.field) : options.sortName;
    if (sortKey) {
      var desc = options.sortOrder === "desc";
      rows.sort(function (a, b) {
        var x = a[sortKey], y = b[sortKey];
        if (x === y) { return 0; }
        return (x > y ? 1 : -1) * (desc ? -1 : 1);
      });
    }
    table.classList.add("gvw-table");
    table.innerHTML = "";
    var thead = document.createElement("thead");
    thead.innerHTML = "<tr>" + columns.map(function (c) { return "<th>" + (c.title || "") + "</th>"; }).join("") + "</tr>";
    var tbody = document.createElement("tbody");
    rows.forEach(function (row, i) {
      var tr = document.createElement("tr");
      var attrs = callNamed(options.rowAttributes, [row, i]) || {};
      Object.keys(attrs).forEach(function (k) { tr.setAttribute(k, attrs[k]); });
      var style = callNamed(options.rowStyle, [row, i]);
      if (style && style.css) { Object.keys(style.css).forEach(function (k) { tr.style[k] = style.css[k]; }); }
      tr.innerHTML = columns.map(function (c) {
        var v = row[c.field]; return "<td>" + (v === undefined || v === null ? "" : v) + "</td>";
      }).join("");
      tr.addEventListener("click", function (e) {
        if (e.target.closest && e.target.closest("a")) { return; }  // a link in the row wins
        (table._gvwRowHandlers || []).forEach(function (h) { h(e, row, new Q([tr])); });
      });
      tbody.appendChild(tr);
    });
    table.appendChild(thead);
    table.appendChild(tbody);
    if (options.search && options.search !== "false" && !table._gvwSearch) {
      var input = document.createElement("input");
      input.type = "search"; input.placeholder = "Search"; input.className = "gvw-table-search";
      table.parentNode.insertBefore(input, table);
      table._gvwSearch = input;
      table._gvwFilter = function (text) {
        var needle = text.toLowerCase();
        Array.prototype.forEach.call(tbody.rows, function (tr) {
          tr.style.display = tr.textContent.toLowerCase().indexOf(needle) === -1 ? "none" : "";
        });
      };
      input.addEventListener("input", function () { table._gvwFilter(input.value); });
    }
  }

  // Bootstrap's data-api for tabs and collapsible blocks.
  document.addEventListener("click", function (e) {
    var trigger = e.target.closest ? e.target.closest("[data-toggle]") : null;
    if (!trigger) { return; }
    var kind = trigger.getAttribute("data-toggle");
    var selector = trigger.getAttribute("data-target") || trigger.getAttribute("href");
    if (kind !== "tab" && kind !== "collapse") { return; }
    var target = null;
    try { target = selector ? document.querySelector(selector) : null; } catch (err) { target = null; }
    if (!target) { return; }
    e.preventDefault();
    if (kind === "collapse") {
      var open = target.classList.toggle("show");
      trigger.setAttribute("aria-expanded", open ? "true" : "false");
      return;
    }
    var list = trigger.closest(".nav");
    if (list) {
      Array.prototype.forEach.call(list.querySelectorAll("[data-toggle='tab']"), function (link) {
        link.classList.remove("active"); link.setAttribute("aria-selected", "false");
      });
    }
    trigger.classList.add("active"); trigger.setAttribute("aria-selected", "true");
    Array.prototype.forEach.call(target.parentNode.children, function (pane) {
      if (pane.classList.contains("tab-pane")) { pane.classList.remove("active", "show"); }
    });
    target.classList.add("active", "show");
  });

  window.$ = window.jQuery = $;
  window.vegaEmbed = function (selector) {
    var el = document.querySelector(selector);
    if (el) { el.innerHTML = "<div class='gvw-chart-offline'>Chart not rendered: the offline Data Docs do not include Vega.</div>"; }
    return { then: function () { return this; }, catch: function () { return this; } };
  };
})();
