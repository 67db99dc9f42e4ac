-- GET /v1/products with a text query, a filter and facets (every answer counts brand, category and
-- price facets over all matches), rotating through shopper-like searches.
local queries = {
  "/v1/products?q=headphones&category=electronics",
  "/v1/products?q=running+shoe&max_price=10000",
  "/v1/products?q=laptop&in_stock=true&sort=price_asc",
  "/v1/products?q=kettle&category=home-garden",
  "/v1/products?q=tent&brand=Summit",
  "/v1/products?q=espresso+machine&min_price=5000",
  "/v1/products?category=shoes&max_price=5000&sort=price_desc",
  "/v1/products?q=backpak&category=outdoor",
  "/v1/products?q=office+chair&in_stock=true",
  "/v1/products?category=audio&brand=Sonic&sort=newest",
}
local counter = 0

request = function()
  counter = counter + 1
  return wrk.format("GET", queries[(counter % #queries) + 1])
end
