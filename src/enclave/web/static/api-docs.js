// Starts the vendored Swagger UI on our own OpenAPI document. Nothing is loaded from elsewhere:
// the validator badge (which calls an outside service) is switched off.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    persistAuthorization: false,
  });
});
