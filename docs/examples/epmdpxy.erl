%%% epmdpxy: the API of the original Erlang EPMDPXY, on top of the epmdpxy
%%% binary. Type it into a plain `erl' shell (no -sname needed):
%%%
%%%   epmdpxy:start().            % EPMD on $ERL_EPMD_PORT, else 4369
%%%   epmdpxy:start(43690).       % or another port; nodes use ERL_EPMD_PORT=43690
%%%   epmdpxy:cut_cables([node1, node2], [node3, node4, node5]).
%%%   epmdpxy:fix_cables([node1, node2], [node3, node4, node5]).
%%%   epmdpxy:stop().
%%%
%%% It needs epmdpxy_ctl (the same directory) and only kernel and stdlib:
%%% `erlc epmdpxy_ctl.erl epmdpxy.erl', then `erl -pa .'. The binary is
%%% `$EPMDPXY', else `epmdpxy' on PATH (or start/2's `path' option). It
%%% runs as a port program under epmdpxy_ctl's watchdog, so it never
%%% outlives the VM that started it, even one killed with SIGKILL.
%%%
%%% One epmdpxy per VM. Every function but start returns `{error,
%%% not_started}' when none runs. Node names are atoms, strings or
%%% binaries, bare (`node1', any host) or full (`'node1@host''). Calls that
%%% change faults return `ok' when epmdpxy answered OK, else `{error, Why}'
%%% with its reason as a binary (e.g. `<<"n9 is exempt ...">>') or, when it
%%% could not be reached, `{error, {connect, Reason}}' — as epmdpxy_ctl
%%% does. When the OK reply carries a note in parentheses (a name not
%%% registered yet, a fix that matched no cut), the note is printed with
%%% io:format: it shows in the shell above the `ok', and in a common_test
%%% case's log.
-module(epmdpxy).

-export([start/0, start/1, start/2, stop/0, proxy/0,
         cut_cables/2, fix_cables/2, heal/0, isolate/1, rejoin/1,
         status/0, command/1]).

-type name() :: atom() | string() | binary().
%% One name or a list of them.
-type names() :: name() | [name()].
-type error() :: {error, not_started | binary() | {atom(), term()}}.

-define(DEFAULT_EPMD_PORT, 4369).

%% State. The proxy is epmdpxy_ctl's owner process, which nothing is
%% linked to: a shell evaluator that crashes (the shell starts a new one
%% after every exception) does not take the proxy along. That process is
%% registered as `epmdpxy': registering is atomic, so of two concurrent
%% starts only one wins, and the name goes away with the process, so
%% "is one running" never has a stale answer. The map epmdpxy_ctl returned
%% (owner and ports) sits in persistent_term, written once per start and
%% read on every call, which is what persistent_term is for; it counts only
%% while the registered name points at the same owner.

%%--------------------------------------------------------------------
%% Starting and stopping
%%--------------------------------------------------------------------

%% @doc Starts epmdpxy as the EPMD on `$ERL_EPMD_PORT', else 4369 (as the
%% original did). Stop a system `epmd' on that port first (`epmd -kill').
-spec start() -> ok | {error, already_started | term()}.
start() ->
    Text = os:getenv("ERL_EPMD_PORT", integer_to_list(?DEFAULT_EPMD_PORT)),
    case string:to_integer(Text) of
        {EpmdPort, ""} -> start(EpmdPort);
        _ -> {error, {not_a_port, "ERL_EPMD_PORT=" ++ Text}}
    end.

%% @doc Starts epmdpxy as the EPMD on `EpmdPort' (0: a free one, see
%% proxy/0). Start the nodes with `ERL_EPMD_PORT=EpmdPort' and
%% `-start_epmd false'.
-spec start(inet:port_number()) -> ok | {error, already_started | term()}.
start(EpmdPort) ->
    start(EpmdPort, #{}).

%% @doc As start/1, with epmdpxy_ctl:start/1's options: `path' (the
%% binary), `args' (extra flags, e.g. ["-v"]), `timeout' (ms). The
%% control port is a free one, so two shells never collide; proxy/0 tells
%% which. Returns `{error, already_started}' when one runs already, even
%% on the same port: stop/0 it first. That holds too for an epmdpxy that
%% exited by itself (`epmd -kill' stops it, as it stops epmd): calls then
%% return `{error, {connect, econnrefused}}' until stop/0. Start-up
%% failures are epmdpxy_ctl's, e.g. `{error, {exited, 1, Output}}' when
%% the port is taken.
-spec start(inet:port_number(), map()) -> ok | {error, already_started | term()}.
start(EpmdPort, Options) when is_integer(EpmdPort), is_map(Options) ->
    case proxy() of
        {ok, _} ->
            {error, already_started};
        {error, not_started} ->
            case epmdpxy_ctl:start(Options#{epmd_port => EpmdPort}) of
                {ok, #{owner := Owner} = Proxy} ->
                    try register(?MODULE, Owner) of
                        true -> persistent_term:put(?MODULE, Proxy)
                    catch
                        error:badarg ->      % another start won the race
                            epmdpxy_ctl:stop(Proxy),
                            {error, already_started}
                    end;
                {error, _} = Error ->
                    Error
            end
    end.

%% @doc Stops epmdpxy; returns once its process is gone. Links through it
%% break, and nodes lose their EPMD.
-spec stop() -> ok | error().
stop() ->
    with_proxy(fun(Proxy) ->
                       epmdpxy_ctl:stop(Proxy),
                       _ = persistent_term:erase(?MODULE),
                       ok
               end).

%% @doc The running proxy, for epmdpxy_ctl's functions (log/1,
%% node_args/1, node_env/1, nodes/1, links/1, request/2):
%% `#{epmd_port := P, control_port := C, owner := Pid}'.
-spec proxy() -> {ok, epmdpxy_ctl:proxy()} | {error, not_started}.
proxy() ->
    case {whereis(?MODULE), persistent_term:get(?MODULE, none)} of
        {Owner, #{owner := Owner} = Proxy} -> {ok, Proxy};
        _ -> {error, not_started}
    end.

%%--------------------------------------------------------------------
%% Faults
%%--------------------------------------------------------------------

%% @doc Cuts every link between a node of `Nodes1' and a node of
%% `Nodes2', both ways, as in a netsplit: the nodes see `nodedown' after
%% `net_ticktime'. Nodes within an island are not touched.
-spec cut_cables(names(), names()) -> ok | error().
cut_cables(Nodes1, Nodes2) ->
    command(["cut ", epmdpxy_ctl:islands_text([Nodes1, Nodes2])]).

%% @doc Undoes exactly that cut (name the nodes as in the cut). Nothing
%% reconnects by itself: the next message or net_adm:ping/1 between two
%% nodes opens a new link.
-spec fix_cables(names(), names()) -> ok | error().
fix_cables(Nodes1, Nodes2) ->
    command(["fix ", epmdpxy_ctl:islands_text([Nodes1, Nodes2])]).

%% @doc Removes every fault.
-spec heal() -> ok | error().
heal() ->
    command("heal").

%% @doc Cuts the nodes from every other node, also from nodes that
%% register later.
-spec isolate(names()) -> ok | error().
isolate(Nodes) ->
    command(["isolate ", epmdpxy_ctl:islands_text([Nodes])]).

%% @doc Undoes isolate/1.
-spec rejoin(names()) -> ok | error().
rejoin(Nodes) ->
    command(["rejoin ", epmdpxy_ctl:islands_text([Nodes])]).

%% @doc The faults in force, one per line, in the syntax that creates them.
-spec status() -> {ok, [binary()]} | error().
status() ->
    with_proxy(fun epmdpxy_ctl:status/1).

%% @doc Any control command, e.g. "delay node1 | node2 200ms",
%% "reset node1 | node2", "split halves" (docs/control-protocol.md).
%% For the data lines of status, nodes or links use status/0 or
%% epmdpxy_ctl with proxy/0.
-spec command(iodata()) -> ok | error().
command(Line) ->
    with_proxy(fun(Proxy) ->
                       case epmdpxy_ctl:request(Proxy, Line) of
                           {ok, Summary, _Data} -> print_note(Summary);
                           {error, _} = Error -> Error
                       end
               end).

%%--------------------------------------------------------------------
%% Internals
%%--------------------------------------------------------------------

with_proxy(Fun) ->
    case proxy() of
        {ok, Proxy} -> Fun(Proxy);
        {error, not_started} = Error -> Error
    end.

%% An OK reply's notes are in parentheses: "cut n1 | n9 (not registered
%% yet: n9; applies when they appear)". None may go unseen, except the
%% plain count of the live links a fault covers ("(2 live links held)"),
%% which says all went as asked.
print_note(Summary) ->
    Plain = re:replace(Summary, <<" \\([0-9]+ live links? (held|shaped)\\)">>, <<>>,
                       [{return, binary}]),
    case binary:match(Plain, <<" (">>) of
        nomatch -> ok;
        _ -> io:format("epmdpxy: ~ts~n", [Summary])
    end.
