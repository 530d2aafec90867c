--- user_edit: every event a user corrected, with the corrected text as the
-- response and the score 10.0 (the reference's). An edit is the best
-- training signal there is: a person wrote the answer they wanted.
--
-- It reads whole events, but the store hands it only those with an edit
-- signal, so a deployment without edits costs nothing here.
local curation = require "crucible.curation"

return curation.register {
  name = "user_edit",
  description = "events with an edit signal; the edited text becomes the response",
  limited = false, -- keep every edit, not limit // 3 of them
  select = function(ctx)
    local picks = {}
    for ev in ctx.events { with_signal = "edit", include_signals = true } do
      -- the text of the first edit (signals come oldest first); an edit
      -- recorded without text keeps the original response
      local edited
      for _, signal in ipairs(ev.signals) do
        if signal.signal_type == "edit" then
          edited = signal.edited_response
          break
        end
      end
      picks[#picks + 1] = { id = ev.id, score = 10.0, response = edited or ev.response }
    end
    return picks
  end,
}
