--- crucible.synthetic: realistic synthetic traffic for a support assistant,
-- for the demo, tests and trying things in the REPL.
--
--   local synthetic = require "crucible.synthetic"
--   local info = synthetic.ingest(cf, { deployment_id = "support-bot", events = 2000 })
--   for item in synthetic.events { events = 10 } do print(item.event.prompt) end
--
-- Deterministic for a seed. The traffic spans `days` days ending now. Until
-- `shift_at` (a share of the events) model v1 answers store questions
-- (passwords, billing, shipping, refunds, accounts); after it, model v2
-- also serves a new developer API, so the topics, the prompt and response
-- lengths and the latency shift, and users complain more. Mixed in
-- everywhere: PII in prompts (emails, phone numbers, card numbers, SSNs, IP
-- addresses, IBANs), refusals, degenerate repetitive answers, very short
-- answers, JSON and Markdown answers, the same question asked many times,
-- and user signals of every type (with edited responses for edits).
local M = {}

-- ---- a seeded generator (SplitMix64) --------------------------------------------

local Rng = {}
Rng.__index = Rng

local function new_rng(seed) return setmetatable({ s = seed }, Rng) end

function Rng:next()
  self.s = self.s + 0x9E3779B97F4A7C15
  local z = self.s
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  return z ~ (z >> 31)
end

--- A float in [0, 1).
function Rng:float() return ((self:next() >> 11) & 0x1FFFFFFFFFFFFF) / 9007199254740992.0 end
--- An integer in [lo, hi].
function Rng:int(lo, hi) return lo + math.floor(self:float() * (hi - lo + 1)) end
function Rng:pick(list) return list[self:int(1, #list)] end
function Rng:chance(p) return self:float() < p end

-- ---- the content -----------------------------------------------------------------

local PRODUCTS = { "wireless headphones", "standing desk", "espresso machine", "running shoes",
                   "4K monitor", "mechanical keyboard", "air purifier", "backpack" }
local CITIES = { "Berlin", "Austin", "Toronto", "Lyon", "Osaka", "Melbourne", "Denver" }
local NAMES = { "Jane Doe", "Carlos Ruiz", "Amara Okafor", "Li Wei", "Sofia Rossi", "Tom Becker" }

local PII = {
  email = function(r) return ("%s.%s%d@example.com"):format(r:pick { "jane", "carlos", "amara", "li", "sofia" },
    r:pick { "doe", "ruiz", "okafor", "wei", "rossi" }, r:int(1, 99)) end,
  phone = function(r) return ("(%d) %d-%04d"):format(r:int(201, 989), r:int(200, 999), r:int(0, 9999)) end,
  card = function(r) return r:pick { "4111 1111 1111 1111", "5500 0000 0000 0004", "3400 0000 0000 009" } end,
  ssn = function(r) return ("%03d-%02d-%04d"):format(r:int(101, 665), r:int(10, 99), r:int(1000, 9999)) end,
  ip = function(r) return ("%d.%d.%d.%d"):format(r:int(11, 223), r:int(0, 255), r:int(0, 255), r:int(1, 254)) end,
  iban = function(r) return r:pick { "DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32" } end,
}

local function fill(text, r, slots)
  return (text:gsub("{(%w+)}", function(k)
    if slots[k] == nil then
      if PII[k] then slots[k] = PII[k](r)
      elseif k == "order" then slots[k] = ("A-%06d"):format(r:int(100000, 999999))
      elseif k == "product" then slots[k] = r:pick(PRODUCTS)
      elseif k == "city" then slots[k] = r:pick(CITIES)
      elseif k == "name" then slots[k] = r:pick(NAMES)
      elseif k == "n" then slots[k] = tostring(r:int(2, 400))
      elseif k == "days" then slots[k] = tostring(r:int(3, 14))
      else slots[k] = k end
    end
    return slots[k]
  end))
end

-- Each topic: prompts (templates; {email} and friends are PII), answers.
local TOPICS = {
  passwords = {
    prompts = {
      "How do I reset my password?",
      "How do I reset my password?",
      "I forgot my password and the reset email never arrives. My email is {email}.",
      "The password reset link says it expired. What now?",
      "Can't log in on mobile after changing my password, please help.",
    },
    answers = {
      "Open Settings > Security and choose 'Reset password'. We email you a link that stays valid "
        .. "for 30 minutes; if it does not arrive, check your spam folder and that the address on "
        .. "your account is correct.",
      "Reset links expire after 30 minutes for your safety. Request a new one from the sign-in "
        .. "page, then open it on the same device. After resetting, sign out and back in on the "
        .. "mobile app so it picks up the new password.",
    },
  },
  billing = {
    prompts = {
      "Why was I charged twice for order {order}?",
      "My card {card} was declined but the money left my account.",
      "Can I get an invoice for order {order} with my company name?",
      "Please refund the duplicate charge to IBAN {iban}.",
    },
    answers = {
      "A second charge is usually a pre-authorisation that your bank releases within 3 to 5 "
        .. "business days. If it is still there after that, reply with the order number and we "
        .. "will refund it right away.",
      "You can download an invoice from Orders > {order} > Invoice. To add a company name, edit "
        .. "your billing profile first; new invoices will use it.",
    },
  },
  shipping = {
    prompts = {
      "Where is my package? Order {order}.",
      "Can I change the delivery address for order {order}? I moved to {city}.",
      "How long does express shipping to {city} take?",
      "The courier left my {product} with a neighbour, {name}. Is that allowed?",
    },
    answers = {
      "Order {order} left our warehouse yesterday and is with the carrier. You can follow it from "
        .. "the tracking link in your confirmation email; most parcels arrive within 2 business days.",
      "Express shipping to {city} takes 1 to 2 business days when you order before 2 pm local "
        .. "time. You can change the address until the parcel is handed to the carrier.",
    },
  },
  refunds = {
    prompts = {
      "I want a refund for the {product} I bought last week.",
      "How long do refunds take?",
      "How long do refunds take?",
      "The {product} arrived broken, can I return it after {days} days?",
    },
    answers = {
      "You can return the {product} within 30 days. Start the return from Orders, print the label "
        .. "and drop the parcel at any post office; the refund reaches your card 5 to 7 days after "
        .. "we receive it.",
      "Refunds are issued as soon as the return is scanned at our warehouse and usually show up "
        .. "on your statement within a week.",
    },
  },
  account = {
    prompts = {
      "How do I delete my account?",
      "Please update my phone number to {phone}.",
      "Someone logged in from {ip}, was my account hacked?",
      "I need to verify my identity, my SSN is {ssn}.",
    },
    answers = {
      "Go to Settings > Privacy > Delete account. We keep order records for tax purposes, but your "
        .. "profile and saved addresses are removed within 30 days.",
      "For security we never ask for government numbers in chat. Review recent sign-ins under "
        .. "Settings > Security, sign out of all devices and change your password if anything "
        .. "looks unfamiliar.",
    },
  },
  -- after the shift: the developer API
  api_limits = {
    prompts = {
      "Our integration gets HTTP 429 from /v2/orders after about {n} requests per minute. Log:\n"
        .. "2026-06-01T10:00:01Z POST /v2/orders 201\n2026-06-01T10:00:01Z POST /v2/orders 429 "
        .. "retry-after=2\n2026-06-01T10:00:02Z POST /v2/orders 429 retry-after=2\n"
        .. "What is the limit and how should we retry without losing orders?",
      "We call the orders API from {ip} and {n} workers. Is the rate limit per key or per IP, "
        .. "and is there a burst allowance? Contact: {email}",
    },
    answers = {
      "The limit is 120 requests per minute per API key, with a burst of 20. On a 429, wait for "
        .. "the number of seconds in the Retry-After header, then retry with exponential backoff:\n"
        .. "```python\nimport time, random\nfor attempt in range(6):\n    r = session.post(url, json=order)\n"
        .. "    if r.status_code != 429:\n        break\n    time.sleep(float(r.headers.get('Retry-After', 1))"
        .. " * (2 ** attempt) + random.random())\n```\nSend an Idempotency-Key header with every order "
        .. "so a retried request never creates a duplicate.",
      "Limits are per API key, not per IP: 120 requests per minute with a burst of 20. If your "
        .. "workers share one key, put a token bucket in front of them or ask us for a key per "
        .. "service. The X-RateLimit-Remaining header tells you how much is left in the window.",
    },
  },
  webhooks = {
    prompts = {
      "Webhook deliveries to https://hooks.example.com/acme fail with 'certificate verify failed' "
        .. "since yesterday. Our server is at {ip}. Nothing changed on our side. What do we check?",
      "How do we verify webhook signatures? We get the X-Acme-Signature header but our HMAC never "
        .. "matches. We compute sha256 over the parsed JSON body.",
    },
    answers = {
      "Compute the HMAC-SHA256 over the raw request body exactly as received, before any JSON "
        .. "parsing, with your endpoint secret as the key, and compare it in constant time:\n"
        .. "```js\nconst sig = crypto.createHmac('sha256', secret).update(rawBody).digest('hex');\n"
        .. "crypto.timingSafeEqual(Buffer.from(sig), Buffer.from(header));\n```\nRe-serialised JSON "
        .. "changes whitespace and key order, which is why your signature never matched.",
      "Our delivery service validates your certificate chain. Since yesterday your server sends "
        .. "only the leaf certificate; install the intermediate certificate too (check with "
        .. "`openssl s_client -connect hooks.example.com:443 -showcerts`). Failed deliveries are "
        .. "retried for 72 hours, so nothing is lost once it is fixed.",
    },
  },
  order_json = {
    prompts = {
      "Return the status of order {order} as JSON with the fields status, carrier and eta.",
      "Give me a JSON summary of my last {n} orders: id, total, currency.",
    },
    answers = {
      '{"order": "{order}", "status": "in_transit", "carrier": "DHL", "eta": "2026-06-04"}',
      '{"orders": [{"id": "{order}", "total": 129.9, "currency": "EUR"}], "count": 1}',
    },
  },
  sso = {
    prompts = {
      "How do I configure SAML single sign-on with Okta for our team of {n} users? Our admin "
        .. "contact is {email} and the IdP metadata URL is https://example.okta.com/app/metadata.",
    },
    answers = {
      "In the admin console open Security > Single sign-on, choose SAML 2.0 and paste the Okta "
        .. "metadata URL. Map the NameID to the user's email, assign the app to your {n} users in "
        .. "Okta, then test with one account before enforcing SSO for everyone. Keep one admin "
        .. "with a password login as a break-glass account.",
    },
  },
}

local BEFORE = { "passwords", "billing", "shipping", "refunds", "account" }
local AFTER = { "api_limits", "webhooks", "order_json", "sso", "api_limits", "webhooks", "passwords" }

local REFUSALS = {
  { "Can you tell me the home address of the seller of my {product}?",
    "I'm sorry, but I cannot share personal information about other customers or sellers." },
  { "Give me a 50% discount code, I deserve it.",
    "As an AI assistant, I don't have the ability to create discount codes." },
  { "Write me a fake invoice for order {order} with a higher amount.",
    "I apologize, but I can't help create altered invoices." },
}

local VAGUE = {
  "Rate limits and webhooks depend on your plan and configuration. Please check the developer "
    .. "documentation or contact support for details.",
  "This can have several causes. Please review your integration settings and try again later.",
}

local SHORT = { "Done.", "Yes.", "It's shipped.", "Sure." }

local EDIT_NOTES = {
  " (Tip: the link also works from the mobile app.)",
  " If you need anything else, reply to this message and a human agent will pick it up.",
  " Note: business customers can also reach us by phone on weekdays.",
}

local function repetitive(r)
  local s = r:pick { "Please restart the app and try again.", "Check your order page for updates.",
                     "We are looking into it." }
  return (s .. " "):rep(r:int(5, 9)):sub(1, -2)
end

-- The signals users give an event, by how good the answer was.
local GOOD = { { "thumbs_up", 0.5 }, { "copy", 0.2 }, { "share", 0.1 }, { "edit", 0.1 },
               { "regenerate", 0.05 }, { "thumbs_down", 0.05 } }
local BAD = { { "thumbs_down", 0.4 }, { "regenerate", 0.3 }, { "report", 0.15 }, { "edit", 0.15 } }

local function weighted(r, list)
  local x, acc = r:float(), 0
  for _, w in ipairs(list) do
    acc = acc + w[2]
    if x < acc then return w[1] end
  end
  return list[#list][1]
end

-- ---- generation ---------------------------------------------------------------------

local DEFAULTS = { deployment_id = "support-bot", events = 2000, days = 7, shift_at = 0.7,
                   seed = 42 }

local function options(opts)
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = v end
  for k, v in pairs(opts or {}) do
    if DEFAULTS[k] == nil and k ~= "now" then
      error(("synthetic: unknown option '%s' (deployment_id, events, days, shift_at, seed, now)")
        :format(tostring(k)), 3)
    end
    o[k] = v
  end
  if math.type(o.events) ~= "integer" or o.events < 1 then
    error("synthetic: events must be a positive integer", 3)
  end
  if type(o.shift_at) ~= "number" or o.shift_at < 0 or o.shift_at > 1 then
    error("synthetic: shift_at must be a share between 0 and 1", 3)
  end
  return o
end

-- One event and its signals.
local function make(r, i, o, t_us)
  local shifted = i > math.floor(o.events * o.shift_at)
  local slots = {}
  local kind = "normal"
  local x = r:float()
  local topic, prompt, response
  if x < 0.05 then
    kind = "refusal"
    local pair = r:pick(REFUSALS)
    topic, prompt, response = "policy", fill(pair[1], r, slots), fill(pair[2], r, slots)
  else
    topic = r:pick(shifted and AFTER or BEFORE)
    local t = TOPICS[topic]
    prompt = fill(r:pick(t.prompts), r, slots)
    if x < 0.08 then
      kind, response = "repetitive", repetitive(r)
    elseif x < 0.11 then
      kind, response = "short", r:pick(SHORT)
    else
      response = fill(r:pick(t.answers), r, slots)
    end
  end
  -- v2 is often vague on the new API topics, and users say so
  local weak = kind == "normal" and shifted and (topic == "api_limits" or topic == "webhooks")
    and r:chance(0.35)
  if weak then response = r:pick(VAGUE) end
  local good = kind == "normal" and not weak
  local ev = {
    deployment_id = o.deployment_id,
    model_version_id = shifted and "v2" or "v1",
    user_id = ("customer-%d"):format(r:int(1, math.max(10, o.events // 4))),
    prompt = prompt,
    response = response,
    latency_ms = shifted and r:int(700, 2600) or r:int(180, 900),
    token_count = #response // 4 + r:int(5, 40),
    metadata = { topic = topic, channel = r:pick { "web", "web", "mobile", "api" },
                 locale = r:pick { "en-US", "en-US", "en-GB", "de-DE" } },
    inserted_at = t_us,
  }
  local signals = {}
  if r:chance(good and 0.3 or 0.6) then
    local st = weighted(r, good and GOOD or BAD)
    local s = { type = st }
    if st == "edit" then
      if good then
        s.edited = response .. r:pick(EDIT_NOTES)
      else
        s.edited = fill(r:pick(TOPICS[shifted and "api_limits" or "refunds"].answers), r, slots)
      end
    end
    signals[1] = s
    if st == "thumbs_down" and r:chance(0.3) then signals[2] = { type = "regenerate" } end
  end
  return { event = ev, signals = signals, kind = kind, shifted = shifted }
end

--- Iterates over the generated traffic: items {event=, signals={{type=,
-- edited=}}, kind= ("normal", "refusal", "repetitive", "short"), shifted=}.
-- opts: deployment_id, events, days, shift_at, seed, now (microseconds).
function M.events(opts)
  local o = options(opts)
  local r = new_rng(o.seed)
  local now = o.now or require("crucible._core").now_us()
  local span = o.days * 86400 * 1000000
  local start = now - span - 60 * 1000000
  local i = 0
  return function()
    i = i + 1
    if i > o.events then return nil end
    return make(r, i, o, start + (i - 1) * (span // o.events))
  end
end

--- The time (microseconds) the shift starts for these options.
function M.shift_time(opts)
  local o = options(opts)
  local now = o.now or require("crucible._core").now_us()
  local span = o.days * 86400 * 1000000
  return now - span - 60 * 1000000 + math.floor(o.events * o.shift_at) * (span // o.events)
end

--- Generates the traffic and ingests it through cf.log_inference, then
-- records the signals (cf.record_signal, cf.record_user_edit). Returns
-- {events=, signals=, signal_counts={type = n}, kinds={kind = n},
-- shifted=, shift_time=} or nil, message.
function M.ingest(cf, opts)
  local o = options(opts)
  o.now = o.now or require("crucible._core").now_us()
  local out = { events = 0, signals = 0, signal_counts = {}, kinds = {}, shifted = 0,
                shift_time = M.shift_time(o) }
  local pending = {}
  for item in M.events(o) do
    local id, err = cf.log_inference(item.event)
    if not id then return nil, err end
    out.events = out.events + 1
    out.kinds[item.kind] = (out.kinds[item.kind] or 0) + 1
    if item.shifted then out.shifted = out.shifted + 1 end
    if #item.signals > 0 then pending[#pending + 1] = { id = id, signals = item.signals } end
  end
  local ok, ferr = cf.flush()
  if not ok then return nil, ferr end
  for _, p in ipairs(pending) do
    for _, s in ipairs(p.signals) do
      local r, err
      if s.type == "edit" then
        r, err = cf.record_user_edit(p.id, s.edited)
      else
        r, err = cf.record_signal(p.id, s.type, { source = "synthetic" })
      end
      if not r then return nil, err end
      out.signals = out.signals + 1
      out.signal_counts[s.type] = (out.signal_counts[s.type] or 0) + 1
    end
  end
  return out
end

return M
