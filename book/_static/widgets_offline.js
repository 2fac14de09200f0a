// Lets the vendored ipywidgets manager (vendor/html-manager/embed-amd.js) work offline with the
// vendored MathJax 3. Loaded on every page by book/_ext/offline_book.py.
(function () {
  "use strict";
  // Each module of the manager's bundle (@jupyter-widgets/base, /controls, ...) finds its font
  // files next to the URL RequireJS gives that module, which is relative to the page unless
  // RequireJS is told that every @jupyter-widgets module lives in the vendored folder. RequireJS
  // reads a global `require` object as its configuration when it loads, after this script.
  var here = document.currentScript && document.currentScript.src;
  if (typeof window.require === "undefined" && here) {
    var vendored = new URL("vendor/html-manager", here).href;
    window.require = {
      paths: {"@jupyter-widgets/html-manager/dist": vendored, "@jupyter-widgets": vendored},
    };
  }
  // The manager typesets widget labels with MathJax 2's MathJax.Hub.Queue; MathJax 3 has no Hub.
  // This one hands the element to MathJax 3 once it has started.
  var hub = {
    Queue: function (command) {
      var mathjax = window.MathJax;
      if (mathjax && mathjax.startup && mathjax.startup.promise) {
        mathjax.startup.promise.then(function () { return mathjax.typesetPromise([command[2]]); });
      }
    },
  };
  var current = window.MathJax;
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () {
      // Only the running MathJax (it has a version), never the configuration object before it.
      if (current && current.version && !current.Hub) { current.Hub = hub; }
      return current;
    },
    set: function (value) { current = value; },
  });
})();
