local support = require "support"
local csanitize = require "crucible._sanitize"

describe("cf.sanitize", function()
  local cf, dir
  before_each(function() cf, dir = support.client {} end)
  after_each(function() cf.close() support.rm_rf(dir) end)

  it("returns the clean text and a count per entity", function()
    local clean, counts = cf.sanitize("mail a@b.com or c@d.org, card 4111111111111111, "
      .. "server 10.0.0.1, key AKIAIOSFODNN7EXAMPLE, IBAN DE89370400440532013000")
    assert.equal("mail [EMAIL] or [EMAIL], card [CREDIT_CARD], server [IP_ADDRESS], "
      .. "key [SECRET], IBAN [IBAN]", clean)
    assert.same({ email = 2, phone = 0, ssn = 0, credit_card = 1, ipv4 = 1, ipv6 = 0, iban = 1,
                  secret = 1 }, counts)
  end)

  it("fills a counts table given to it", function()
    local counts = { email = 9, extra = "kept" }
    local clean, same = cf.sanitize("a@b.com and c@d.org", counts)
    assert.equal("[EMAIL] and [EMAIL]", clean)
    assert.equal(counts, same)
    assert.equal(2, counts.email)
    assert.equal(0, counts.phone)
    assert.equal("kept", counts.extra)
    assert.has_error(function() cf.sanitize("x", "y") end,
      "bad argument #2 to 'sanitize' (table expected, got string)")
  end)

  it("leaves near misses alone", function()
    local text = "released v1.2.3 on 2024-01-15 at 10:30:00, order #5551234567, ts 1700000000, "
      .. "card 4111111111111112, 1.2.3.4.5"
    assert.equal(text, (cf.sanitize(text)))
  end)

  it("handles empty, unicode and 1 MB text, and refuses invalid UTF-8", function()
    assert.equal("", (cf.sanitize("")))
    assert.equal("Привет [EMAIL] 👋", (cf.sanitize("Привет ivan@пример.рф 👋")))
    assert.equal("写信 [EMAIL]。", (cf.sanitize("写信 wang@example.com。")))
    local big = ("x"):rep(1024 * 1024 - 20) .. " 123-45-6789"
    local clean, counts = cf.sanitize(big)
    assert.equal(1, counts.ssn)
    assert.equal(#big - 11 + 5, #clean)
    local res, err, kind = cf.sanitize("ok \xc0\xaf")
    assert.is_nil(res)
    assert.equal("invalid", kind)
    assert.equal("text is not valid UTF-8 (bad byte at offset 3)", err)
  end)

  it("follows sanitizer.entities and sanitizer.pii_patterns", function()
    local cf2 = support.client {
      storage = { url = "sqlite:" .. dir .. "/2.db" },
      sanitizer = { entities = { email = false, ipv4 = false },
                    pii_patterns = { { pattern = "SECRET\\d+", replacement = "[SECRET_CODE]", name = "code" },
                                     { pattern = "(\\w+)@internal", replacement = "$1@[HIDDEN]" } } },
    }
    local clean, counts = cf2.sanitize("a@b.com 10.0.0.1 SECRET42 joe@internal 555-123-4567")
    assert.equal("a@b.com 10.0.0.1 [SECRET_CODE] joe@[HIDDEN] [PHONE]", clean)
    assert.equal(1, counts.code)
    assert.equal(1, counts.custom)
    assert.equal(0, counts.email)
    local id = assert(cf2.log_inference { deployment_id = "d", prompt = "SECRET7 a@b.com", response = "r" })
    assert(cf2.flush())
    assert.equal("[SECRET_CODE] a@b.com", cf2.store():get_event(id).prompt)
    assert.equal(1, cf2.stats().redactions.code)
    cf2.close()
  end)

  it("redacts label:value forms in prompts, responses and metadata values", function()
    local raw = "SSN:123-45-6789 card:4111111111111111 phone:555-234-5678 ip:10.0.0.1"
    local want = "SSN:[SSN] card:[CREDIT_CARD] phone:[PHONE] ip:[IP_ADDRESS]"
    local id = assert(cf.log_inference { deployment_id = "d", prompt = raw, response = "ok " .. raw,
                                         metadata = { note = raw, list = { "key:AKIAIOSFODNN7EXAMPLE" } } })
    assert(cf.flush())
    local ev = cf.store():get_event(id)
    assert.equal(want, ev.prompt)
    assert.equal("ok " .. want, ev.response)
    assert.equal(want, ev.metadata.note)
    assert.equal("key:[SECRET]", ev.metadata.list[1])
    local r = cf.stats().redactions
    assert.same({ 3, 3, 3, 3, 1 }, { r.ssn, r.credit_card, r.phone, r.ipv4, r.secret })
  end)

  it("rejects an unknown entity name in config", function()
    local cf2 = require("crucible").new { config = { sanitizer = { entities = { emails = false } } } }
    assert.is_nil(cf2)
    local _, err = require("crucible").new { config = { sanitizer = { entities = { emails = false } } } }
    assert.truthy(err:find("unknown key 'sanitizer.entities.emails' (did you mean 'sanitizer.entities.email'?)",
      1, true))
  end)

  it("exposes the entity list and replacements", function()
    assert.same({ "secret", "credit_card", "iban", "email", "ssn", "ipv6", "ipv4", "phone" }, csanitize.ENTITIES)
    assert.equal("[CREDIT_CARD]", csanitize.REPLACEMENTS.credit_card)
    local s = assert(csanitize.new())
    assert.truthy(tostring(s):find("crucible.Sanitizer", 1, true))
    s:close()
    s:close()
    assert.has_error(function() s:sanitize("x") end, "attempt to use a closed sanitizer")
    assert.has_error(function() csanitize.new { entities = { nope = true } } end)
  end)
end)
