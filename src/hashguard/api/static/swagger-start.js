// Starts Swagger UI on /docs. A file, not an inline script, so the page's policy runs none;
// the page names the OpenAPI document in this script's data-openapi attribute.
"use strict";
SwaggerUIBundle({
  url: document.currentScript.dataset.openapi,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
