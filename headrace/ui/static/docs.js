/* The API description, rendered by the Swagger UI copy shipped in the package. */
"use strict";
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null, deepLinking: true,
  requestInterceptor: function (req) {
    const m = document.querySelector('meta[name="csrf-token"]');
    if (m) req.headers["X-CSRF-Token"] = m.content;
    return req;
  } });
