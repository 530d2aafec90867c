`schedule` runs the config's workflows. Without any it says what to add:

  $ crucible-feedback schedule
  crucible-feedback: no schedules configured: add schedules = {{ name = ..., cron = "0 3 * * *" (or every = SECONDS), script = ..., args = {...} }} to the configuration
  [1]

A bad schedule names the entry and the problem, when the configuration is
loaded (a usage error: status 2), whatever runs:

  $ printf 'return { schedules = { { name = "n", cron = "0 25 * * *", script = "wf.lua" }, { name = "m", every = 0, script = "wf.lua", argz = {} } } }\n' > crucible.config.lua
  $ crucible-feedback schedule --list
  crucible-feedback: config (crucible.config.lua): schedules[1]: cron '0 25 * * *': field 2 (hour): 25 is out of range 0-23
  config (crucible.config.lua): schedules[2]: unknown key 'argz' (did you mean 'args'?)
  config (crucible.config.lua): schedules[2]: every must be a whole number of seconds (at least 1)
  config (crucible.config.lua): schedules[1]: script './wf.lua' does not exist
  config (crucible.config.lua): schedules[2]: script './wf.lua' does not exist
  [2]
  $ crucible-feedback -e 'print(require("crucible").config)'
  crucible-feedback: config (crucible.config.lua): schedules[1]: cron '0 25 * * *': field 2 (hour): 25 is out of range 0-23
  config (crucible.config.lua): schedules[2]: unknown key 'argz' (did you mean 'args'?)
  config (crucible.config.lua): schedules[2]: every must be a whole number of seconds (at least 1)
  config (crucible.config.lua): schedules[1]: script './wf.lua' does not exist
  config (crucible.config.lua): schedules[2]: script './wf.lua' does not exist
  [2]
  $ printf 'return { schedules = "nightly" }\n' > crucible.config.lua
  $ crucible-feedback schedule
  crucible-feedback: config (crucible.config.lua): 'schedules' must be a list, got 'nightly'
  [2]

A workflow is a script; its arguments come from `args`:

  $ cat > wf.lua <<'LUA'
  > local pipeline = require "crucible.pipeline"
  > local workflow = require "crucible.workflow"
  > local o = workflow.args(arg, { deployment = { required = true }, quiet = { flag = true } })
  > local f = assert(io.open("ran.log", "a")) f:write(o.deployment, "\n") f:close()
  > return assert(pipeline.run({ deployment_id = o.deployment }, { { stage = "assess_quality" } }))
  > LUA
  $ printf 'return { schedules = { { name = "tick", every = 1, script = "wf.lua", args = { "--deployment", "d1" } }, { name = "nightly", cron = "0 3 * * *", script = "wf.lua", args = { "--deploymnt", "d1" } } } }\n' > crucible.config.lua
  $ crucible-feedback schedule --list
  schedule          rule                    next run (UTC)        last run
  tick              every 1 s               %d+%-%d+%-%d+T%d+:%d+:%d+Z  never (re)
  nightly           cron "0 3 %* %* %*"        %d+%-%d+%-%d+T03:00:00Z  never (re)

`--for` stops after a while: an every=1 schedule fires twice in 2.5 s, and
each run is logged and stored:

  $ crucible-feedback schedule --for 2.5 > sched.log; echo $?
  0
  $ grep -c "schedule 'tick': run .* ok in" sched.log
  2
  $ cat ran.log
  d1
  d1
  $ tail -1 sched.log
  %d+%-%d+%-%d+T%d+:%d+:%d+Z scheduler stopped %(time is up%) (re)
  $ crucible-feedback schedule --history
  started (UTC)         schedule          status       seconds  error
  %S+%s+tick%s+ok%s+%d+%.%d+%s* (re)
  %S+%s+tick%s+ok%s+%d+%.%d+%s* (re)

`--run NAME` runs one now (exit status 1 when it fails); the script's own
usage error is part of the record:

  $ crucible-feedback schedule --run nightly > run.log 2>&1; echo $?
  1
  $ grep -c "unknown option '--deploymnt' (did you mean '--deployment'?)" run.log
  1
  $ crucible-feedback schedule --history --limit 1
  started (UTC)         schedule          status       seconds  error
  %S+%s+nightly%s+failed%s+%d+%.%d+%s+the script called os.exit%(2%) (re)
  $ crucible-feedback schedule --run nihgtly
  crucible-feedback: no schedule named 'nihgtly' (did you mean 'nightly'?) (see 'crucible-feedback schedule --help')
  [2]
  $ crucible-feedback schedule --for soon
  crucible-feedback: --for must be a positive number of seconds, got 'soon' (see 'crucible-feedback schedule --help')
  [2]

A run past its `timeout` (seconds) is stopped and recorded, even a busy
loop; the next run is not blocked by its lease:

  $ printf 'while true do end\n' > spin.lua
  $ printf 'return { schedules = { { name = "spin", every = 60, script = "spin.lua", timeout = 0.5 }, { name = "bad", every = 60, script = "spin.lua", timeout = 0 } } }\n' > crucible.config.lua
  $ crucible-feedback schedule --list
  crucible-feedback: config (crucible.config.lua): schedules[2]: timeout must be a positive number of seconds
  [2]
  $ printf 'return { schedules = { { name = "spin", every = 60, script = "spin.lua", timeout = 0.5 } } }\n' > crucible.config.lua
  $ crucible-feedback schedule --run spin > spin.log; echo $?
  1
  $ crucible-feedback schedule --run spin > spin.log; echo $?
  1
  $ crucible-feedback schedule --history --limit 2
  started (UTC)         schedule          status       seconds  error
  %S+%s+spin%s+stopped%s+0%.%d+%s+timed out after 0%.5 s %(the schedule's timeout%) (re)
  %S+%s+spin%s+stopped%s+0%.%d+%s+timed out after 0%.5 s %(the schedule's timeout%) (re)

A workflow that closes the instance at its end still has its run recorded:

  $ printf 'local cf = require("crucible").default()\ncf.close()\n' > closes.lua
  $ printf 'return { schedules = { { name = "closes", every = 60, script = "closes.lua" } } }\n' > crucible.config.lua
  $ crucible-feedback schedule --run closes > closes.log; echo $?
  0
  $ crucible-feedback schedule --history --limit 1
  started (UTC)         schedule          status       seconds  error
  %S+%s+closes%s+ok%s+%d+%.%d+%s* (re)
