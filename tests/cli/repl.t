The REPL prints expressions, tables readably, and errors without stopping.

  $ printf '1 + 1\n{b = 2, a = {1, 2, "x"}}\nlocal t = {}\nerror("oops")\nfor i = 1, 2 do\nprint(i)\nend\nreturn 7, nil, "s"\n' | crucible-feedback repl 2>&1
  crucible%-feedback .* (re)
  > 2
  > { a = { 1, 2, "x" }, b = 2 }
  > > stdin:1: oops
  stack traceback:
  ...
  > >> >> 1
  2
  > 7	nil	"s"
  > 
  $ printf 'type(cf.store)\ncf.config.ingestion.max_batch_size\n' | crucible-feedback repl 2>&1
  crucible%-feedback .* (re)
  > "function"
  > 1000
  > 
