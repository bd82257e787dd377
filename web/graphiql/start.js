// Starts GraphiQL against the page's own address (/graphql); a served file because the page's CSP allows no inline script.
(function () {
  "use strict";

  var STARTER_QUERY = [
    "# GraphiQL für die mailaccounts-API.",
    "#",
    "# Jede Anfrage braucht einen Token: unten im Reiter „Headers“ eintragen:",
    '#   {"Authorization": "Bearer <token>"}',
    "# (`mailaccounts token create --tenant NAME --scope read` gibt einen aus).",
    "# Mit dem Token lädt GraphiQL das Schema (Docs, Autovervollständigung).",
    "# Der Token bleibt nur in diesem Tab, er wird nicht im Browser gespeichert.",
    "#",
    "# Ausführen: Strg-Enter oder die Play-Taste.",
    "",
    "query Accounts {",
    "  accounts(first: 10) {",
    "    totalCount",
    "    edges { node { id email senderName status messageCount } }",
    "  }",
    "}",
    "",
  ].join("\n");
  var DEFAULT_HEADERS = '{\n  "Authorization": "Bearer "\n}';
  var NO_TOKEN = 'Kein Token: im Reiter „Headers“ {"Authorization": "Bearer <token>"} eintragen.';

  // The bearer value of a headers object, or null when there is none worth sending.
  function bearerOf(headers) {
    if (!headers || typeof headers !== "object") return null;
    for (var name in headers) {
      if (name.toLowerCase() === "authorization" && /^Bearer\s+\S+/i.test(String(headers[name]))) {
        return String(headers[name]).trim();
      }
    }
    return null;
  }

  function bearerOfText(text) {
    try {
      return bearerOf(JSON.parse(text || "{}"));
    } catch (error) {
      return null; // half-typed JSON: wait for the user to finish
    }
  }

  // GraphiQL's dialogs add a <style> element (their scroll lock); the bundled library gives it this nonce,
  // which the page's CSP allows for this response only.
  window.__webpack_nonce__ = document.querySelector('meta[name="style-nonce"]').content;

  // GraphiQL's history stores the headers of every query run, even with shouldPersistHeaders: false, which
  // would put the bearer token into localStorage. This storage keeps no headers, whichever part asks.
  function withoutHeaders(value) {
    try {
      return JSON.stringify(JSON.parse(value), function (key, item) {
        return key === "headers" ? null : item;
      });
    } catch (error) {
      return value; // not JSON (a query's text)
    }
  }

  var STORAGE_PREFIX = "graphiql:";
  var storage = {
    getItem: function (key) {
      return window.localStorage.getItem(key);
    },
    setItem: function (key, value) {
      if (key !== STORAGE_PREFIX + "headers") window.localStorage.setItem(key, withoutHeaders(value));
    },
    removeItem: function (key) {
      window.localStorage.removeItem(key);
    },
    get length() {
      return Object.keys(window.localStorage).filter(function (key) {
        return key.indexOf(STORAGE_PREFIX) === 0;
      }).length;
    },
    clear: function () {
      Object.keys(window.localStorage).forEach(function (key) {
        if (key.indexOf(STORAGE_PREFIX) === 0) window.localStorage.removeItem(key);
      });
    },
  };

  // The API answers at the address this page was served from; it has no subscriptions, so no WebSocket.
  var sendToApi = GraphiQL.createFetcher({ url: window.location.origin + window.location.pathname });

  // Loading the schema without a token can only end in a 401: say what is missing instead of asking.
  function fetcher(params, options) {
    if (params.operationName === "IntrospectionQuery" && !bearerOf(options && options.headers)) {
      return Promise.resolve({ errors: [{ message: NO_TOKEN }] });
    }
    return sendToApi(params, options);
  }

  // Rendered inside GraphiQL (its footer) to reach the schema store: a newly typed token loads the schema.
  function LoadSchemaWithToken(props) {
    var introspect = GraphiQL.React.useSchemaStore().introspect;
    React.useEffect(
      function () {
        if (!props.token) return undefined;
        var timer = window.setTimeout(introspect, 300);
        return function () {
          window.clearTimeout(timer);
        };
      },
      [props.token],
    );
    return null;
  }

  function MailaccountsGraphiQL() {
    var tokenState = React.useState(null);
    var explorer = React.useMemo(function () {
      return GraphiQLPluginExplorer.explorerPlugin();
    }, []);
    return React.createElement(
      GraphiQL,
      {
        fetcher: fetcher,
        plugins: [explorer],
        defaultQuery: STARTER_QUERY,
        defaultHeaders: DEFAULT_HEADERS,
        defaultEditorToolsVisibility: "headers",
        isHeadersEditorEnabled: true,
        onEditHeaders: function (text) {
          tokenState[1](bearerOfText(text));
        },
        // A bearer token is a credential: keep it out of localStorage, where later users of this browser
        // profile (and any script of this origin) could read it.
        shouldPersistHeaders: false,
        storage: storage,
        inputValueDeprecation: true,
      },
      React.createElement(GraphiQL.Footer, null, React.createElement(LoadSchemaWithToken, { token: tokenState[0] })),
    );
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(MailaccountsGraphiQL));
})();
