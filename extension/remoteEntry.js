// jrps-session: the page jrps puts inside every session's JupyterLab or
// Notebook 7. It warns before the session's time is up, saves open
// documents just before, offers to extend the session when the site
// allows, and shows the site's announcement.
//
// Plain JavaScript with no build step: JupyterLab loads a prebuilt
// ("federated") extension by running this file and asking the container it
// registers in `_JUPYTERLAB` for the module `./extension`. This file is that
// container and that module, and it imports nothing: it uses only what
// JupyterLab hands every plugin (the application, its commands and shell),
// so it needs none of JupyterLab's shared packages and works in every 4.x
// and in Notebook 7. The `jrps` binary embeds it and the job writes it to
// the session folder (docs/design.md, "Time inside the session").
//
// Everything it knows comes from the proxy at /_jrps/v1/status on this
// origin, which the proxy answers itself behind the session's cookie.
(function () {
  'use strict';

  var NAME = 'jrps-session';
  var STATUS = '/_jrps/v1/status';
  var EXTEND = '/_jrps/v1/extend';
  // Often enough that a warning is at most this late, and an end moved by
  // `jrps extend` or a new announcement shows within it.
  var POLL_MS = 10000;
  // What the Extend action asks for at most; the headroom may be less.
  var EXTEND_STEP_S = 1800;
  // A save still running after this is waiting on something (a dialog
  // asking about a file changed on disk): say so instead of waiting.
  var SAVE_PATIENCE_MS = 10000;

  function span(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds >= 3600) {
      var m = Math.floor((seconds % 3600) / 60);
      return Math.floor(seconds / 3600) + ' h ' + (m < 10 ? '0' : '') + m + ' min';
    }
    if (seconds >= 60) return Math.round(seconds / 60) + ' min';
    return seconds + ' s';
  }

  function start(app) {
    var commands = app.commands;
    var state = {
      status: null,
      // Server time minus this page's, so that ends compare by the proxy's clock.
      offset: 0,
      warned: {},
      saved: {},
      announced: null,
      ended: false
    };

    function serverNow() {
      return Date.now() / 1000 + state.offset;
    }

    // A notification that stays until dismissed, or the banner where
    // this front end has no notifications. Asked each time: the plugin
    // that adds the command may activate after this one.
    function tell(type, message, actions) {
      if (commands.hasCommand('apputils:notify')) {
        return commands.execute('apputils:notify', {
          message: message,
          type: type,
          options: { autoClose: false, actions: actions || [] }
        });
      }
      banner(type, message, actions || []);
      return Promise.resolve();
    }

    function banner(type, message, actions) {
      var bar = document.getElementById('jrps-banner');
      if (!bar) {
        bar = document.createElement('div');
        bar.id = 'jrps-banner';
        bar.setAttribute('role', 'status');
        bar.style.cssText =
          'position:fixed;top:0;left:0;right:0;z-index:10000;padding:6px 12px;' +
          'font:14px sans-serif;display:flex;gap:8px;align-items:center;' +
          'border-bottom:1px solid #888;';
        document.body.appendChild(bar);
      }
      bar.style.background = type === 'error' ? '#f8d7da' : type === 'warning' ? '#fff3cd' : '#d1ecf1';
      bar.textContent = '';
      var text = document.createElement('span');
      text.textContent = message;
      text.style.flex = '1';
      bar.appendChild(text);
      actions.concat([{ label: 'Dismiss', dismiss: true }]).forEach(function (action) {
        var button = document.createElement('button');
        button.textContent = action.label;
        button.onclick = function () {
          if (action.dismiss) bar.remove();
          else commands.execute(action.commandId, action.args || {});
        };
        bar.appendChild(button);
      });
    }

    function headroom() {
      var s = state.status;
      if (!s || s.extend_until == null || s.ends_at == null) return 0;
      return Math.max(0, s.extend_until - s.ends_at);
    }

    function warningActions() {
      var actions = [{ label: 'Save all', commandId: 'docmanager:save-all' }];
      var room = Math.min(headroom(), EXTEND_STEP_S);
      if (room >= 60) {
        actions.push({ label: 'Extend ' + span(room), commandId: 'jrps:extend' });
      }
      return actions;
    }

    commands.addCommand('jrps:extend', {
      label: 'Extend this session',
      execute: function () {
        var by = Math.min(headroom(), EXTEND_STEP_S);
        return fetch(EXTEND, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ by_s: by }),
          cache: 'no-store'
        })
          .then(function (response) {
            return response.json().then(function (body) {
              if (!response.ok) throw new Error(body.detail || response.statusText);
              return body;
            });
          })
          .then(function (status) {
            take(status);
            var left = status.ends_at - serverNow();
            var more = headroom();
            return tell(
              'success',
              'Extended: this session now ends in ' + span(left) +
                (more >= 60 ? ' (it may be extended by ' + span(more) + ' more).' : '.')
            );
          })
          .catch(function (error) {
            return tell('error', 'This session could not be extended: ' + error.message);
          });
      }
    });

    // Every open document with unsaved changes, saved; each one that
    // fails or waits on a question is named with why.
    function saveAll() {
      var widgets = [];
      var all = app.shell.widgets('main');
      for (var it = all.next(); !it.done; it = all.next()) widgets.push(it.value);
      var dirty = widgets.filter(function (w) {
        return w.context && w.context.model && w.context.model.dirty && !w.context.model.readOnly;
      });
      if (dirty.length === 0) {
        return tell('info', 'Time is nearly up: every open document was already saved.');
      }
      return Promise.all(
        dirty.map(function (w) {
          var path = w.context.path;
          var waited = new Promise(function (resolve) {
            setTimeout(function () {
              resolve({ path: path, problem: 'a dialog is waiting for your answer (the file changed on disk?)' });
            }, SAVE_PATIENCE_MS);
          });
          var saved = w.context.save().then(
            function () {
              return { path: path };
            },
            function (error) {
              return { path: path, problem: (error && error.message) || String(error) };
            }
          );
          return Promise.race([saved, waited]);
        })
      ).then(function (results) {
        var done = results.filter(function (r) { return !r.problem; });
        var failed = results.filter(function (r) { return r.problem; });
        var left = state.status ? span(state.status.ends_at - serverNow()) : 'little time';
        var message = 'Time is nearly up (' + left + ' left). ';
        if (done.length) {
          message += 'Saved ' + done.map(function (r) { return r.path; }).join(', ') + '. ';
        }
        if (failed.length) {
          message += 'Not saved: ' + failed.map(function (r) { return r.path + ' (' + r.problem + ')'; }).join('; ') + '.';
        }
        return tell(failed.length ? 'error' : 'success', message.trim(), failed.length ? warningActions() : []);
      });
    }

    function take(status) {
      state.status = status;
      state.offset = status.now - Date.now() / 1000;
    }

    function look(status) {
      take(status);
      if (status.announcement && status.announcement !== state.announced) {
        state.announced = status.announcement;
        tell('info', 'Announcement: ' + status.announcement);
      }
      if (status.state === 'ended') {
        if (!state.ended) {
          state.ended = true;
          var why = status.end_reason ? ' (' + status.end_reason.replace(/-/g, ' ') + ')' : '';
          tell('error', 'This session has ended' + why + '. Work not saved since the last save is lost.');
        }
        return;
      }
      if (status.ends_at == null) return;
      var left = status.ends_at - serverNow();
      var end = String(status.ends_at);
      if (status.save_before != null && left <= status.save_before) {
        if (!state.saved[end]) {
          state.saved[end] = true;
          saveAll();
        }
        return;
      }
      // The nearest warning time passed; the ones before it count as given.
      var due = (status.warn_before || [])
        .slice()
        .sort(function (a, b) { return a - b; })
        .filter(function (w) { return left <= w; });
      if (due.length === 0) return;
      var key = end + ':' + due[0];
      if (state.warned[key]) return;
      due.forEach(function (w) { state.warned[end + ':' + w] = true; });
      tell(
        'warning',
        'This session ends in ' + span(left) + '. Save your work: unsaved changes are lost when it ends.',
        warningActions()
      );
    }

    function poll() {
      fetch(STATUS, { cache: 'no-store', credentials: 'same-origin' })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (status) {
          if (status) look(status);
        })
        .catch(function () {
          // The proxy away for a moment: the next poll tries again.
        })
        .then(function () {
          if (!state.ended) setTimeout(poll, POLL_MS);
        });
    }

    // After the shell is restored, the notification commands exist.
    Promise.resolve(app.restored).then(poll, poll);
  }

  var plugin = {
    id: NAME + ':plugin',
    description: 'Warns before the session ends, saves, extends; shows announcements (jrps).',
    autoStart: true,
    activate: start
  };

  var container = {
    init: function () {},
    get: function (module) {
      if (module === './extension') {
        return Promise.resolve(function () {
          return { __esModule: true, default: plugin };
        });
      }
      return Promise.reject(new Error(NAME + ' has no module ' + module));
    }
  };

  var root = typeof self !== 'undefined' ? self : window;
  (root._JUPYTERLAB = root._JUPYTERLAB || {})[NAME] = container;
})();
