%%% epmdpxy_ctl: run epmdpxy from an Erlang test suite and drive its
%%% control port.
%%%
%%% Copy this file into your test directory (rebar3 compiles everything in
%%% `test/'; for plain `ct_run' compile it with `erlc' and pass `-pa').
%%% It needs only kernel and stdlib.
%%%
%%%   {ok, Pxy} = epmdpxy_ctl:start(),          % epmdpxy on free ports
%%%   Args = epmdpxy_ctl:node_args(Pxy),        % -start_epmd false -epmd_port P
%%%   Env  = epmdpxy_ctl:node_env(Pxy),         % ERL_EPMD_PORT=P
%%%   ... start peer nodes with Args and Env ...
%%%   ok = epmdpxy_ctl:cut(Pxy, [[N1], [N2, N3]]),
%%%   ok = epmdpxy_ctl:wait_for_blocked(Pxy, [[N1], [N2, N3]], 5000),
%%%   ok = epmdpxy_ctl:fix(Pxy, [[N1], [N2, N3]]),
%%%   ok = epmdpxy_ctl:heal(Pxy),
%%%   ok = epmdpxy_ctl:command(Pxy, "any control command"),
%%%   epmdpxy_ctl:stop(Pxy).
%%%
%%% Starting: `start/1' runs the binary as a port program with
%%% `--port 0 --control-port 0', so every suite gets its own free ports, and
%%% waits for the `ready epmd_port=P control_port=C' line epmdpxy prints on
%%% stderr. The binary is the `path' option, else `$EPMDPXY', else
%%% `epmdpxy' on `PATH'. It runs under a tiny `sh' watchdog that kills it
%%% when the port closes, so it also goes away when the test VM dies
%%% without calling `stop/1'. A process spawned by `start/1' owns the port,
%%% so the proxy outlives the process that started it (common_test runs
%%% `init_per_suite' and each test case in different processes).
%%%
%%% Control: each call opens a TCP connection to the control port, sends
%%% one line and reads the reply: `OK ...' or `ERR <why>'; for `status',
%%% `nodes', `links', `matrix', `help' and `ring' data lines follow, ended
%%% by `END'. Any command line can be sent with `command/2' (result only)
%%% or `request/2' (the whole reply), so commands added to epmdpxy later
%%% work unchanged.
%%% The functions also accept a bare control port number or
%%% `{Host, Port}' instead of the map `start/1' returns, for an epmdpxy
%%% started some other way.
-module(epmdpxy_ctl).

-export([start/0, start/1, stop/1, epmd_port/1, control_port/1, log/1,
         node_args/1, node_env/1,
         command/2, command/3, request/2, request/3,
         cut/2, cut/3, fix/2, heal/1, status/1, nodes/1, links/1,
         wait_for_blocked/3, islands_text/1]).

-export_type([proxy/0, control/0, islands/0]).

-type proxy() :: #{owner := pid(), epmd_port := inet:port_number(),
                   control_port := inet:port_number()}.
%% Where the control port is: what start/1 returned, a port on
%% 127.0.0.1, or a host and port.
-type control() :: proxy() | inet:port_number()
                 | {inet:hostname() | inet:ip_address(), inet:port_number()}.
-type node_name() :: atom() | string() | binary().
%% `[[n1@h], [n2@h, n3@h]]' (a bare name is an island of one), or the text
%% of the command, e.g. "n1 | n2,n3".
-type islands() :: [node_name() | [node_name()]] | string() | binary().
-type error() :: {error, binary() | {atom(), term()}}.

%% Reply lines are short; this only bounds a broken peer.
-define(MAX_LINE, 65536).
-define(DEFAULT_TIMEOUT, 15000).
-define(READY_TIMEOUT, 10000).
%% Lines of epmdpxy output kept for log/1.
-define(LOG_LINES, 10000).
%% Commands whose reply is `OK ...', data lines, then `END'.
-define(MULTI_LINE, ["status", "nodes", "links", "matrix", "help", "ring"]).

%% Keeps epmdpxy's pipe from the VM on fd 3 (background jobs get
%% /dev/null as stdin), runs epmdpxy, and kills it as soon as that pipe
%% reaches end-of-file: the port was closed or the VM is gone.
-define(WATCHDOG,
        "exec 3<&0\n"
        "\"$0\" \"$@\" </dev/null & pid=$!\n"
        "{ while read -r _; do :; done; kill $pid 2>/dev/null; } <&3 & watch=$!\n"
        "wait $pid; status=$?\n"
        "kill $watch 2>/dev/null\n"
        "echo \"epmdpxy exited with status $status\"\n"
        "exit $status\n").

%%--------------------------------------------------------------------
%% Starting and stopping
%%--------------------------------------------------------------------

%% @equiv start(#{})
-spec start() -> {ok, proxy()} | error().
start() ->
    start(#{}).

%% Starts epmdpxy on free ports and waits until it is ready.
%% Options: `path' (the binary; default `$EPMDPXY', else `epmdpxy' on
%% PATH), `args' (extra arguments, e.g. ["-v"]), `timeout' (ms to wait for
%% the ready line, default 10000), `epmd_port' (the EPMD port; default 0,
%% a free one; the control port is always a free one).
-spec start(#{path => file:filename(), args => [string()],
              timeout => timeout(), epmd_port => inet:port_number()}) ->
          {ok, proxy()} | error().
start(Options) when is_map(Options) ->
    case executable(Options) of
        {ok, Path} ->
            PortArg = integer_to_list(maps:get(epmd_port, Options, 0)),
            Args = ["--port", PortArg, "--control-port", "0"
                    | maps:get(args, Options, [])],
            Timeout = maps:get(timeout, Options, ?READY_TIMEOUT),
            Caller = self(),
            Tag = make_ref(),
            Owner = spawn(fun() -> owner_init(Caller, Tag, Path, Args, Timeout) end),
            Monitor = monitor(process, Owner),
            receive
                {Tag, {ready, EpmdPort, ControlPort}} ->
                    demonitor(Monitor, [flush]),
                    {ok, #{owner => Owner, epmd_port => EpmdPort,
                           control_port => ControlPort}};
                {Tag, {error, _} = Error} ->
                    demonitor(Monitor, [flush]),
                    Error;
                {'DOWN', Monitor, process, Owner, Reason} ->
                    {error, {owner_died, Reason}}
            end;
        Error ->
            Error
    end.

%% Stops epmdpxy and waits (up to 5 s) until its control port is closed.
-spec stop(proxy()) -> ok.
stop(#{owner := Owner} = Proxy) ->
    Monitor = monitor(process, Owner),
    Owner ! stop,
    receive {'DOWN', Monitor, process, Owner, _} -> ok end,
    wait_until_closed(Proxy, 100).

%% The EPMD port: give it to the nodes (see node_args/1, node_env/1).
-spec epmd_port(proxy()) -> inet:port_number().
epmd_port(#{epmd_port := Port}) -> Port.

-spec control_port(proxy()) -> inet:port_number().
control_port(#{control_port := Port}) -> Port.

%% What epmdpxy printed so far (its stderr), oldest line first, at most the
%% last 10000 lines. Start it with #{args => ["-v"]} for node, link and
%% fault events.
-spec log(proxy()) -> [binary()].
log(#{owner := Owner}) ->
    Monitor = monitor(process, Owner),
    Owner ! {log, self(), Monitor},
    receive
        {Monitor, Lines} -> demonitor(Monitor, [flush]), Lines;
        {'DOWN', Monitor, process, Owner, _} -> []
    end.

%% erl flags for a node that must use this epmdpxy: never start a real
%% epmd, and look for EPMD on our port. Use node_env/1 as well: an
%% ERL_EPMD_PORT inherited from the environment wins over -epmd_port.
-spec node_args(proxy()) -> [string()].
node_args(Proxy) ->
    ["-start_epmd", "false", "-epmd_port", integer_to_list(epmd_port(Proxy))].

%% Environment for such a node (e.g. peer's `env' option).
-spec node_env(proxy()) -> [{string(), string()}].
node_env(Proxy) ->
    [{"ERL_EPMD_PORT", integer_to_list(epmd_port(Proxy))}].

%%--------------------------------------------------------------------
%% Control commands
%%--------------------------------------------------------------------

%% @equiv cut(Control, Islands, #{})
-spec cut(control(), islands()) -> ok | error().
cut(Control, Islands) ->
    cut(Control, Islands, #{}).

%% Cuts every link between nodes of different islands, both ways. A name
%% that matches no registered node (nor an end of a live link) is an
%% error, `{error, {not_registered, Names}}', and the cut is undone, so a
%% typo or a node named differently (`peer:random_name/0' adds a suffix)
%% never passes for a partition. With `#{pending => true}' such a cut is
%% kept for the nodes to come, and epmdpxy's note is logged.
-spec cut(control(), islands(), #{pending => boolean()}) -> ok | error().
cut(Control, Islands, Options) ->
    Text = islands_text(Islands),
    case request(Control, ["cut ", Text]) of
        {ok, Summary, _} ->
            case {not_registered(Summary), maps:get(pending, Options, false)} of
                {[], _} ->
                    ok;
                {_, true} ->
                    logger:notice("epmdpxy: ~ts", [Summary]),
                    ok;
                {Names, false} ->
                    _ = request(Control, ["fix ", Text]),
                    {error, {not_registered, Names}}
            end;
        {error, _} = Error ->
            Error
    end.

%% Waits until epmdpxy reports every live link between nodes of different
%% islands held both ways (`state=cut' in `links'), and no link whose
%% initiator it could not learn towards one of them: the moment the cut
%% is in force for every live link (what RabbitMQ's `wait_for_blocked'
%% gives its suites). Nodes are compared by their name before `@'.
-spec wait_for_blocked(control(), islands(), timeout()) ->
          ok | {error, {timeout, [binary()]}} | error().
wait_for_blocked(Control, Islands, Timeout) ->
    Groups = [[alive(Name) || Name <- Island] || Island <- islands_list(Islands)],
    wait_blocked(Control, Groups, deadline(Timeout)).

%% Undoes exactly that cut. Links do not come back by themselves: the next
%% message or net_adm:ping/1 between two nodes opens a new one.
-spec fix(control(), islands()) -> ok | error().
fix(Control, Islands) ->
    command(Control, ["fix ", islands_text(Islands)]).

%% Removes every fault.
-spec heal(control()) -> ok | error().
heal(Control) ->
    command(Control, "heal").

%% The faults in force, one line each, in the syntax that creates them.
-spec status(control()) -> {ok, [binary()]} | error().
status(Control) -> data(request(Control, "status")).

%% Registered nodes, one line each.
-spec nodes(control()) -> {ok, [binary()]} | error().
nodes(Control) -> data(request(Control, "nodes")).

%% Live links, one line each.
-spec links(control()) -> {ok, [binary()]} | error().
links(Control) -> data(request(Control, "links")).

%% The command text of islands: [[a, b], c] gives "a,b | c"; text passes
%% through unchanged.
-spec islands_text(islands()) -> iodata().
islands_text(Text) when is_binary(Text) -> Text;
islands_text([Char | _] = Text) when is_integer(Char) -> Text;
islands_text(Islands) when is_list(Islands) ->
    lists:join(" | ", [island_text(Island) || Island <- Islands]).

%% @equiv command(Control, Line, #{})
-spec command(control(), iodata()) -> ok | error().
command(Control, Line) ->
    command(Control, Line, #{}).

%% Sends any command line; `ok' on an OK reply, `{error, Why}' on ERR.
-spec command(control(), iodata(), map()) -> ok | error().
command(Control, Line, Options) ->
    case request(Control, Line, Options) of
        {ok, _Summary, _Data} -> ok;
        {error, _} = Error -> Error
    end.

%% @equiv request(Control, Line, #{})
-spec request(control(), iodata()) ->
          {ok, Summary :: binary(), Data :: [binary()]} | error().
request(Control, Line) ->
    request(Control, Line, #{}).

%% Sends any command line and returns the whole reply: the text after `OK '
%% and the data lines (without `END'; [] for one-line replies), or the text
%% after `ERR '. Options: `timeout' (ms for the whole exchange, default
%% 15000), `multi_line' (true/false: whether an OK reply has data lines
%% ending with END; by default true for status, nodes, links, matrix, help
%% and ring).
-spec request(control(), iodata(), #{timeout => timeout(),
                                     multi_line => boolean()}) ->
          {ok, Summary :: binary(), Data :: [binary()]} | error().
request(Control, Line0, Options) ->
    Line = string:trim(unicode:characters_to_binary(Line0)),
    MultiLine = maps:get(multi_line, Options, is_multi_line(Line)),
    Deadline = deadline(maps:get(timeout, Options, ?DEFAULT_TIMEOUT)),
    {Host, Port} = address(Control),
    SocketOptions = [binary, {active, false}, {packet, line},
                     {buffer, ?MAX_LINE}, {nodelay, true}],
    case gen_tcp:connect(Host, Port, SocketOptions, left(Deadline)) of
        {ok, Socket} ->
            try exchange(Socket, Line, MultiLine, Deadline)
            after gen_tcp:close(Socket)
            end;
        {error, Reason} ->
            {error, {connect, Reason}}
    end.

%%--------------------------------------------------------------------
%% Internals
%%--------------------------------------------------------------------

exchange(Socket, Line, MultiLine, Deadline) ->
    case gen_tcp:send(Socket, [Line, $\n]) of
        ok ->
            case recv_line(Socket, Deadline) of
                {ok, <<"OK", Rest/binary>>} when MultiLine ->
                    case recv_until_end(Socket, Deadline, []) of
                        {ok, Data} -> {ok, summary(Rest), Data};
                        Error -> Error
                    end;
                {ok, <<"OK", Rest/binary>>} ->
                    {ok, summary(Rest), []};
                {ok, <<"ERR", Rest/binary>>} ->
                    {error, summary(Rest)};
                {ok, Other} ->
                    {error, {unexpected_reply, Other}};
                Error ->
                    Error
            end;
        {error, Reason} ->
            {error, {send, Reason}}
    end.

recv_until_end(Socket, Deadline, Acc) ->
    case recv_line(Socket, Deadline) of
        {ok, <<"END">>} -> {ok, lists:reverse(Acc)};
        {ok, Line} -> recv_until_end(Socket, Deadline, [Line | Acc]);
        Error -> Error
    end.

recv_line(Socket, Deadline) ->
    case gen_tcp:recv(Socket, 0, left(Deadline)) of
        {ok, Data} -> {ok, chomp(Data)};
        {error, Reason} -> {error, {recv, Reason}}
    end.

%% Drops the line ending (\n or \r\n).
chomp(Line) ->
    Size = byte_size(Line),
    case Line of
        <<Text:(Size - 2)/binary, "\r\n">> -> Text;
        <<Text:(Size - 1)/binary, "\n">> -> Text;
        _ -> Line
    end.

summary(Rest) -> string:trim(Rest, leading).

%% The names of a `(not registered yet: a,b; applies when they appear)'
%% note, if the reply has one.
not_registered(Summary) ->
    Marker = <<"(not registered yet: ">>,
    case binary:split(Summary, Marker) of
        [_, Rest] ->
            [Names | _] = binary:split(Rest, <<";">>),
            [Name || Name <- binary:split(Names, <<",">>, [global]), Name =/= <<>>];
        [_] ->
            []
    end.

wait_blocked(Control, Groups, Deadline) ->
    case links(Control) of
        {ok, Lines} ->
            case [Line || Line <- Lines, not blocked(Line, Groups)] of
                [] ->
                    ok;
                Open ->
                    case left(Deadline) of
                        0 -> {error, {timeout, Open}};
                        _ -> timer:sleep(50), wait_blocked(Control, Groups, Deadline)
                    end
            end;
        {error, _} = Error ->
            Error
    end.

%% A `links' line is fine for the cut when it does not cross it, or is
%% held both ways; a link from an unknown initiator to a node of the cut
%% is not (the proxy cannot say).
blocked(Line, Groups) ->
    case string:lexemes(Line, " ") of
        [_Id, From, <<"->">>, To, <<"state=", State/binary>> | _] ->
            Island = fun(Name) -> island_of(alive(Name), Groups, 1) end,
            case {Island(From), Island(To)} of
                {_, none} -> true;
                {none, _} when From =:= <<"unknown">>; From =:= <<"?">> -> false;
                {none, _} -> true;
                {Same, Same} -> true;
                {_, _} -> State =:= <<"cut">>
            end;
        _ ->
            true
    end.

island_of(_Name, [], _N) -> none;
island_of(Name, [Group | Groups], N) ->
    case lists:member(Name, Group) of
        true -> N;
        false -> island_of(Name, Groups, N + 1)
    end.

%% The part of a node name before `@', as a binary.
alive(Name) ->
    Text = unicode:characters_to_binary(name_text(Name)),
    hd(binary:split(Text, <<"@">>)).

%% Islands as lists of names, from either form islands() takes.
islands_list(Text) when is_binary(Text) ->
    [string:lexemes(Island, ", ") || Island <- binary:split(Text, <<"|">>, [global])];
islands_list([Char | _] = Text) when is_integer(Char) ->
    islands_list(unicode:characters_to_binary(Text));
islands_list(Islands) when is_list(Islands) ->
    [case Island of
         [First | _] when not is_integer(First) -> Island;
         _ -> [Island]
     end || Island <- Islands].

data({ok, _Summary, Data}) -> {ok, Data};
data({error, _} = Error) -> Error.

is_multi_line(Line) ->
    Word = case string:lexemes(Line, " \t") of
               [First | _] -> string:lowercase(binary_to_list(First));
               [] -> ""
           end,
    lists:member(Word, ?MULTI_LINE).

address(#{control_port := Port}) -> {{127, 0, 0, 1}, Port};
address(Port) when is_integer(Port) -> {{127, 0, 0, 1}, Port};
address({Host, Port}) when is_integer(Port) -> {Host, Port}.

deadline(infinity) -> infinity;
deadline(Ms) -> erlang:monotonic_time(millisecond) + Ms.

left(infinity) -> infinity;
left(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

island_text(Names) when is_list(Names), Names =/= [], not is_integer(hd(Names)) ->
    lists:join(",", [name_text(Name) || Name <- Names]);
island_text(Name) ->
    name_text(Name).

name_text(Name) when is_atom(Name) -> atom_to_list(Name);
name_text(Name) -> Name.

executable(Options) ->
    Candidates = [maps:get(path, Options, false), os:getenv("EPMDPXY"),
                  os:find_executable("epmdpxy")],
    case [Path || Path <- Candidates, Path =/= false, Path =/= ""] of
        [Path | _] ->
            case filelib:is_regular(Path) of
                true -> {ok, Path};
                false -> {error, {no_such_file, Path}}
            end;
        [] ->
            {error, {not_found, "epmdpxy: put it on PATH, set EPMDPXY, "
                                "or pass #{path => ...}"}}
    end.

wait_until_closed(_Proxy, 0) ->
    ok;
wait_until_closed(Proxy, Tries) ->
    case gen_tcp:connect({127, 0, 0, 1}, control_port(Proxy), [], 1000) of
        {ok, Socket} ->
            gen_tcp:close(Socket),
            timer:sleep(50),
            wait_until_closed(Proxy, Tries - 1);
        {error, _} ->
            ok
    end.

%% The owner process: starts the port, reports the ready line, then keeps
%% the log until told to stop.
owner_init(Caller, Tag, Path, Args, Timeout) ->
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{args, ["-c", ?WATCHDOG, Path | Args]},
                      {line, ?MAX_LINE}, binary, stderr_to_stdout,
                      exit_status, hide]),
    await_ready(Caller, Tag, Port, deadline(Timeout), queue:new(), 0).

await_ready(Caller, Tag, Port, Deadline, Log, Count) ->
    receive
        {Port, {data, {_, Line}}} ->
            {Log1, Count1} = keep(Line, Log, Count),
            case parse_ready(Line) of
                {ok, EpmdPort, ControlPort} ->
                    Caller ! {Tag, {ready, EpmdPort, ControlPort}},
                    owner_loop(Port, Log1, Count1);
                error ->
                    await_ready(Caller, Tag, Port, Deadline, Log1, Count1)
            end;
        {Port, {exit_status, Status}} ->
            Caller ! {Tag, {error, {exited, Status, queue:to_list(Log)}}}
    after left(Deadline) ->
            catch port_close(Port),
            Caller ! {Tag, {error, {not_ready, queue:to_list(Log)}}}
    end.

owner_loop(Port, Log, Count) ->
    receive
        {Port, {data, {_, Line}}} ->
            {Log1, Count1} = keep(Line, Log, Count),
            owner_loop(Port, Log1, Count1);
        {Port, {exit_status, _}} ->
            %% epmdpxy is gone; keep answering log/1 until stop/1.
            owner_loop(closed, Log, Count);
        {log, From, Ref} ->
            From ! {Ref, queue:to_list(Log)},
            owner_loop(Port, Log, Count);
        stop when Port =:= closed ->
            ok;
        stop ->
            catch port_close(Port),
            ok
    end.

keep(Line, Log, Count) when Count >= ?LOG_LINES ->
    keep(Line, queue:drop(Log), Count - 1);
keep(Line, Log, Count) ->
    {queue:in(Line, Log), Count + 1}.

%% Finds `ready epmd_port=P control_port=C' in a line of epmdpxy's output.
parse_ready(Line) ->
    Words = string:lexemes(Line, " "),
    case lists:member(<<"ready">>, Words) of
        true ->
            Value = fun(Key) ->
                            [binary_to_integer(V) || W <- Words,
                                                     [K, V] <- [string:split(W, "=")],
                                                     K =:= Key]
                    end,
            case {Value(<<"epmd_port">>), Value(<<"control_port">>)} of
                {[EpmdPort], [ControlPort]} -> {ok, EpmdPort, ControlPort};
                _ -> error
            end;
        false ->
            error
    end.
