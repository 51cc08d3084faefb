# A pprof Profile in its protobuf JSON form (what Pyroscope's SelectMergeProfile
# answers to a Connect JSON call: int64 values as strings, empty fields left
# out) as folded stacks, "root;...;leaf VALUE", of the first sample type.
.stringTable as $s
| (reduce (.function // [])[] as $f ({}; .[$f.id] = $s[($f.name // "0") | tonumber])) as $fn
# a location without lines (an address only) reads "[address N]"
| (reduce (.location // [])[] as $l ({}; .[$l.id] =
	(if ($l.line // []) == [] then ["[address \($l.address // "0")]"]
	 else [($l.line // [])[] | $fn[.functionId // "0"] // "?"] end))) as $loc
| (.sample // [])[]
| ([(.locationId // []) | reverse | .[] | ($loc[.] // ["?"]) | reverse | .[]] | join(";")) + " " + ((.value // ["0"])[0])
