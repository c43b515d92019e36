-- wrk script of the gateway benchmark: POST a chat completion.
-- env: MODEL (default fake-model), STREAM=1 ("stream": true), HOST, BEARER,
-- PORTKEY=1 with CUSTOM_HOST (Portkey's routing headers)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- HOST and BEARER: the server with auth and limits on, an API key
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BEARER") or "sk-bench")
if os.getenv("HOST") then
  wrk.headers["Host"] = os.getenv("HOST")
end
if os.getenv("PORTKEY") == "1" then
  wrk.headers["x-portkey-provider"] = "openai"
  wrk.headers["x-portkey-custom-host"] = os.getenv("CUSTOM_HOST")
end
wrk.body = '{"model":"' .. (os.getenv("MODEL") or "fake-model")
  .. '","messages":[{"role":"user","content":"Say hello"}]'
  .. (os.getenv("STREAM") == "1" and ',"stream":true' or '') .. '}'

-- one line the launcher parses
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %.1f %.1f %.1f %d %d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, summary.errors.status))
end
