-- GET /v1/products/{id} for ids spread over the generated catalog (seed-000001 … seed-N).
local products = tonumber(os.getenv("PRODUCTS") or "100000")
local counter = 0

request = function()
  counter = counter + 1
  local n = (counter * 7919) % products + 1
  return wrk.format("GET", string.format("/v1/products/seed-%06d", n))
end
