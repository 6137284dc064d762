defmodule EpmdpxyCtl do
  @moduledoc """
  Run epmdpxy from an ExUnit suite and drive its control port.

  Copy this file into `test/support/` (and add that directory to
  `elixirc_paths(:test)` in `mix.exs`), or `Code.require_file/1` it from
  `test/test_helper.exs`. It needs nothing beyond Elixir and OTP.

      {:ok, pxy} = EpmdpxyCtl.start()           # epmdpxy on free ports
      args = EpmdpxyCtl.node_args(pxy)          # -start_epmd false -epmd_port P
      env = EpmdpxyCtl.node_env(pxy)            # ERL_EPMD_PORT=P
      # ... start :peer nodes with args and env ...
      :ok = EpmdpxyCtl.cut(pxy, [[n1], [n2, n3]])
      :ok = EpmdpxyCtl.wait_for_blocked(pxy, [[n1], [n2, n3]], 5_000)
      :ok = EpmdpxyCtl.fix(pxy, [[n1], [n2, n3]])
      :ok = EpmdpxyCtl.heal(pxy)
      :ok = EpmdpxyCtl.command(pxy, "any control command")
      EpmdpxyCtl.stop(pxy)

  Starting: `start/1` runs the binary as a port program with
  `--port 0 --control-port 0`, so every suite gets its own free ports, and
  waits for the `ready epmd_port=P control_port=C` line epmdpxy prints on
  stderr. The binary is the `:path` option, else `$EPMDPXY`, else
  `epmdpxy` on `PATH`. It runs under a tiny `sh` watchdog that kills it
  when the port closes, so it also goes away when the test VM dies without
  calling `stop/1`. A process spawned by `start/1` owns the port, so the
  proxy outlives the process that started it (`setup_all` runs in a
  different process from the tests).

  Control: each call opens a TCP connection to the control port, sends one
  line and reads the reply: `OK ...` or `ERR <why>`; for `status`, `nodes`,
  `links`, `matrix`, `help` and `ring` data lines follow, ended by `END`.
  Any command line can be sent with `command/3` (result only) or
  `request/3` (the whole reply), so commands added to epmdpxy later work
  unchanged. The functions also accept a bare control port number or
  `{host, port}` instead of the map `start/1` returns, for an epmdpxy
  started some other way.
  """

  @default_timeout 15_000
  @ready_timeout 10_000
  # Reply lines are short; this only bounds a broken peer.
  @max_line 65_536
  # Lines of epmdpxy output kept for log/1.
  @log_lines 10_000
  # Commands whose reply is `OK ...`, data lines, then `END`.
  @multi_line ~w(status nodes links matrix help ring)

  # Keeps epmdpxy's pipe from the VM on fd 3 (background jobs get
  # /dev/null as stdin), runs epmdpxy, and kills it as soon as that pipe
  # reaches end-of-file: the port was closed or the VM is gone.
  @watchdog """
  exec 3<&0
  "$0" "$@" </dev/null & pid=$!
  { while read -r _; do :; done; kill $pid 2>/dev/null; } <&3 & watch=$!
  wait $pid; status=$?
  kill $watch 2>/dev/null
  echo "epmdpxy exited with status $status"
  exit $status
  """

  @type proxy :: %{owner: pid, epmd_port: :inet.port_number(), control_port: :inet.port_number()}
  @type control :: proxy | :inet.port_number() | {:inet.hostname() | :inet.ip_address(), :inet.port_number()}
  @type node_name :: atom | String.t() | charlist
  @typedoc "`[[n1], [n2, n3]]` (a bare name is an island of one), or the command text, e.g. `\"n1 | n2,n3\"`."
  @type islands :: [node_name | [node_name]] | String.t()
  @type error :: {:error, String.t() | {atom, term}}

  ## Starting and stopping

  @doc """
  Starts epmdpxy on free ports and waits until it is ready.

  Options: `:path` (the binary; default `$EPMDPXY`, else `epmdpxy` on
  PATH), `:args` (extra arguments, e.g. `["-v"]`), `:timeout` (ms to wait
  for the ready line, default 10000), `:epmd_port` (the EPMD port; default
  0, a free one; the control port is always a free one).
  """
  @spec start(keyword) :: {:ok, proxy} | error
  def start(options \\ []) do
    with {:ok, path} <- executable(options) do
      epmd_port = Integer.to_string(Keyword.get(options, :epmd_port, 0))
      args = ["--port", epmd_port, "--control-port", "0" | Keyword.get(options, :args, [])]
      timeout = Keyword.get(options, :timeout, @ready_timeout)
      caller = self()
      tag = make_ref()
      owner = spawn(fn -> owner_init(caller, tag, path, args, timeout) end)
      monitor = Process.monitor(owner)

      receive do
        {^tag, {:ready, epmd_port, control_port}} ->
          Process.demonitor(monitor, [:flush])
          {:ok, %{owner: owner, epmd_port: epmd_port, control_port: control_port}}

        {^tag, {:error, _} = error} ->
          Process.demonitor(monitor, [:flush])
          error

        {:DOWN, ^monitor, :process, ^owner, reason} ->
          {:error, {:owner_died, reason}}
      end
    end
  end

  @doc "Stops epmdpxy and waits (up to 5 s) until its control port is closed."
  @spec stop(proxy) :: :ok
  def stop(%{owner: owner} = proxy) do
    monitor = Process.monitor(owner)
    send(owner, :stop)

    receive do
      {:DOWN, ^monitor, :process, ^owner, _} -> :ok
    end

    wait_until_closed(proxy, 100)
  end

  @doc "The EPMD port: give it to the nodes (see `node_args/1`, `node_env/1`)."
  def epmd_port(%{epmd_port: port}), do: port
  def control_port(%{control_port: port}), do: port

  @doc """
  What epmdpxy printed so far (its stderr), oldest line first, at most the
  last 10000 lines. Start it with `args: ["-v"]` for node, link and fault
  events.
  """
  @spec log(proxy) :: [String.t()]
  def log(%{owner: owner}) do
    monitor = Process.monitor(owner)
    send(owner, {:log, self(), monitor})

    receive do
      {^monitor, lines} ->
        Process.demonitor(monitor, [:flush])
        lines

      {:DOWN, ^monitor, :process, ^owner, _} ->
        []
    end
  end

  @doc """
  erl flags (charlists, as `:peer` wants them) for a node that must use
  this epmdpxy: never start a real epmd, and look for EPMD on our port. Use
  `node_env/1` as well: an ERL_EPMD_PORT inherited from the environment
  wins over `-epmd_port`.
  """
  @spec node_args(proxy) :: [charlist]
  def node_args(proxy) do
    [~c"-start_epmd", ~c"false", ~c"-epmd_port", Integer.to_charlist(epmd_port(proxy))]
  end

  @doc "Environment for such a node (`:peer`'s `env` option)."
  @spec node_env(proxy) :: [{charlist, charlist}]
  def node_env(proxy), do: [{~c"ERL_EPMD_PORT", Integer.to_charlist(epmd_port(proxy))}]

  ## Control commands

  @doc """
  Cuts every link between nodes of different islands, both ways. A name
  that matches no registered node (nor an end of a live link) is an error,
  `{:error, {:not_registered, names}}`, and the cut is undone, so a typo or
  a node named differently (`:peer.random_name/0` adds a suffix) never
  passes for a partition. With `pending: true` such a cut is kept for the
  nodes to come, and epmdpxy's note is logged.
  """
  @spec cut(control, islands, keyword) :: :ok | error
  def cut(control, islands, options \\ []) do
    text = islands_text(islands)

    with {:ok, summary, _} <- request(control, "cut " <> text) do
      case {not_registered(summary), Keyword.get(options, :pending, false)} do
        {[], _} ->
          :ok

        {_, true} ->
          require Logger
          Logger.notice("epmdpxy: " <> summary)
          :ok

        {names, false} ->
          _ = request(control, "fix " <> text)
          {:error, {:not_registered, names}}
      end
    end
  end

  @doc """
  Waits until epmdpxy reports every live link between nodes of different
  islands held both ways (`state=cut` in `links`), and no link whose
  initiator it could not learn towards one of them: the moment the cut is
  in force for every live link. Nodes are compared by their name before
  `@`. `{:error, {:timeout, open_links}}` if that does not happen in time.
  """
  @spec wait_for_blocked(control, islands, timeout) :: :ok | error
  def wait_for_blocked(control, islands, timeout) do
    groups =
      islands
      |> islands_text()
      |> String.split("|")
      |> Enum.map(fn island -> island |> String.split(",", trim: true) |> Enum.map(&alive/1) end)

    wait_blocked(control, groups, deadline(timeout))
  end

  @doc """
  Undoes exactly that cut. Links do not come back by themselves: the next
  message or `Node.connect/1` between two nodes opens a new one.
  """
  @spec fix(control, islands) :: :ok | error
  def fix(control, islands), do: command(control, "fix " <> islands_text(islands))

  @doc "Removes every fault."
  @spec heal(control) :: :ok | error
  def heal(control), do: command(control, "heal")

  @doc "The faults in force, one line each, in the syntax that creates them."
  def status(control), do: data(request(control, "status"))
  @doc "Registered nodes, one line each."
  def nodes(control), do: data(request(control, "nodes"))
  @doc "Live links, one line each."
  def links(control), do: data(request(control, "links"))

  @doc "The command text of islands: `[[:a, :b], :c]` gives `\"a,b | c\"`; text passes through."
  @spec islands_text(islands) :: String.t()
  def islands_text(text) when is_binary(text), do: text
  def islands_text(islands) when is_list(islands), do: Enum.map_join(islands, " | ", &island_text/1)

  @doc "Sends any command line: `:ok` on an OK reply, `{:error, why}` on ERR."
  @spec command(control, String.t(), keyword) :: :ok | error
  def command(control, line, options \\ []) do
    case request(control, line, options) do
      {:ok, _summary, _data} -> :ok
      {:error, _} = error -> error
    end
  end

  @doc """
  Sends any command line and returns the whole reply: the text after `OK `
  and the data lines (without `END`; `[]` for one-line replies), or the
  text after `ERR `. Options: `:timeout` (ms for the whole exchange,
  default 15000), `:multi_line` (whether an OK reply has data lines ending
  with END; by default true for status, nodes, links, matrix, help and
  ring).
  """
  @spec request(control, String.t(), keyword) :: {:ok, String.t(), [String.t()]} | error
  def request(control, line, options \\ []) do
    line = String.trim(line)
    word = line |> String.split() |> List.first("") |> String.downcase()
    multi_line = Keyword.get(options, :multi_line, word in @multi_line)
    deadline = deadline(Keyword.get(options, :timeout, @default_timeout))
    {host, port} = address(control)
    socket_options = [:binary, active: false, packet: :line, buffer: @max_line, nodelay: true]

    case :gen_tcp.connect(host, port, socket_options, left(deadline)) do
      {:ok, socket} ->
        try do
          exchange(socket, line, multi_line, deadline)
        after
          :gen_tcp.close(socket)
        end

      {:error, reason} ->
        {:error, {:connect, reason}}
    end
  end

  ## Internals

  defp exchange(socket, line, multi_line, deadline) do
    with :ok <- send_line(socket, line),
         {:ok, first} <- recv_line(socket, deadline) do
      case first do
        "OK" <> rest when multi_line ->
          with {:ok, data} <- recv_until_end(socket, deadline, []) do
            {:ok, String.trim_leading(rest), data}
          end

        "OK" <> rest ->
          {:ok, String.trim_leading(rest), []}

        "ERR" <> rest ->
          {:error, String.trim_leading(rest)}

        other ->
          {:error, {:unexpected_reply, other}}
      end
    end
  end

  defp send_line(socket, line) do
    case :gen_tcp.send(socket, [line, ?\n]) do
      :ok -> :ok
      {:error, reason} -> {:error, {:send, reason}}
    end
  end

  defp recv_until_end(socket, deadline, acc) do
    case recv_line(socket, deadline) do
      {:ok, "END"} -> {:ok, Enum.reverse(acc)}
      {:ok, line} -> recv_until_end(socket, deadline, [line | acc])
      error -> error
    end
  end

  defp recv_line(socket, deadline) do
    case :gen_tcp.recv(socket, 0, left(deadline)) do
      {:ok, data} -> {:ok, data |> String.trim_trailing("\n") |> String.trim_trailing("\r")}
      {:error, reason} -> {:error, {:recv, reason}}
    end
  end

  defp not_registered(summary) do
    case String.split(summary, "(not registered yet: ", parts: 2) do
      [_, rest] -> rest |> String.split(";", parts: 2) |> hd() |> String.split(",", trim: true)
      [_] -> []
    end
  end

  defp wait_blocked(control, groups, deadline) do
    with {:ok, lines} <- links(control) do
      case Enum.reject(lines, &blocked?(&1, groups)) do
        [] ->
          :ok

        open ->
          if left(deadline) == 0 do
            {:error, {:timeout, open}}
          else
            Process.sleep(50)
            wait_blocked(control, groups, deadline)
          end
      end
    end
  end

  # A `links` line is fine for the cut when it does not cross it, or is
  # held both ways; a link from an unknown initiator to a node of the cut
  # is not (the proxy cannot say).
  defp blocked?(line, groups) do
    case String.split(line, " ", trim: true) do
      [_id, from, "->", to, "state=" <> state | _] ->
        case {island_of(alive(from), groups), island_of(alive(to), groups)} do
          {_, nil} -> true
          {nil, _} -> from not in ["unknown", "?"]
          {same, same} -> true
          {_, _} -> state == "cut"
        end

      _ ->
        true
    end
  end

  defp island_of(name, groups), do: Enum.find_index(groups, &(name in &1))

  defp alive(name), do: name |> name_text() |> String.trim() |> String.split("@") |> hd()

  defp data({:ok, _summary, data}), do: {:ok, data}
  defp data({:error, _} = error), do: error

  defp address(%{control_port: port}), do: {{127, 0, 0, 1}, port}
  defp address(port) when is_integer(port), do: {{127, 0, 0, 1}, port}
  defp address({host, port}) when is_binary(host), do: {String.to_charlist(host), port}
  defp address({host, port}) when is_integer(port), do: {host, port}

  defp deadline(:infinity), do: :infinity
  defp deadline(ms), do: System.monotonic_time(:millisecond) + ms

  defp left(:infinity), do: :infinity
  defp left(deadline), do: max(0, deadline - System.monotonic_time(:millisecond))

  defp island_text([first | _] = names) when not is_integer(first),
    do: Enum.map_join(names, ",", &name_text/1)

  defp island_text(name), do: name_text(name)

  defp name_text(name) when is_atom(name), do: Atom.to_string(name)
  defp name_text(name), do: to_string(name)

  defp executable(options) do
    candidates = [Keyword.get(options, :path), System.get_env("EPMDPXY"), System.find_executable("epmdpxy")]

    case Enum.reject(candidates, &(&1 in [nil, ""])) do
      [path | _] ->
        if File.regular?(path), do: {:ok, path}, else: {:error, {:no_such_file, path}}

      [] ->
        {:error, {:not_found, "epmdpxy: put it on PATH, set EPMDPXY, or pass path: ..."}}
    end
  end

  defp wait_until_closed(_proxy, 0), do: :ok

  defp wait_until_closed(proxy, tries) do
    case :gen_tcp.connect({127, 0, 0, 1}, control_port(proxy), [], 1000) do
      {:ok, socket} ->
        :gen_tcp.close(socket)
        Process.sleep(50)
        wait_until_closed(proxy, tries - 1)

      {:error, _} ->
        :ok
    end
  end

  # The owner process: starts the port, reports the ready line, then keeps
  # the log until told to stop.
  defp owner_init(caller, tag, path, args, timeout) do
    port =
      Port.open({:spawn_executable, ~c"/bin/sh"}, [
        {:args, ["-c", @watchdog, path | args]},
        {:line, @max_line},
        :binary,
        :stderr_to_stdout,
        :exit_status,
        :hide
      ])

    await_ready(caller, tag, port, deadline(timeout), :queue.new(), 0)
  end

  defp await_ready(caller, tag, port, deadline, log, count) do
    receive do
      {^port, {:data, {_, line}}} ->
        {log, count} = keep(line, log, count)

        case parse_ready(line) do
          {:ok, epmd_port, control_port} ->
            send(caller, {tag, {:ready, epmd_port, control_port}})
            owner_loop(port, log, count)

          :error ->
            await_ready(caller, tag, port, deadline, log, count)
        end

      {^port, {:exit_status, status}} ->
        send(caller, {tag, {:error, {:exited, status, :queue.to_list(log)}}})
    after
      left(deadline) ->
        catch_close(port)
        send(caller, {tag, {:error, {:not_ready, :queue.to_list(log)}}})
    end
  end

  defp owner_loop(port, log, count) do
    receive do
      {^port, {:data, {_, line}}} ->
        {log, count} = keep(line, log, count)
        owner_loop(port, log, count)

      {^port, {:exit_status, _}} ->
        # epmdpxy is gone; keep answering log/1 until stop/1.
        owner_loop(:closed, log, count)

      {:log, from, ref} ->
        send(from, {ref, :queue.to_list(log)})
        owner_loop(port, log, count)

      :stop ->
        if port != :closed, do: catch_close(port)
        :ok
    end
  end

  defp catch_close(port) do
    Port.close(port)
  rescue
    ArgumentError -> :ok
  end

  defp keep(line, log, count) when count >= @log_lines, do: keep(line, :queue.drop(log), count - 1)
  defp keep(line, log, count), do: {:queue.in(line, log), count + 1}

  # Finds `ready epmd_port=P control_port=C` in a line of epmdpxy's output.
  defp parse_ready(line) do
    words = String.split(line, " ", trim: true)

    if "ready" in words do
      values =
        for word <- words, [key, value] <- [String.split(word, "=", parts: 2)], into: %{} do
          {key, value}
        end

      with {epmd_port, ""} <- Integer.parse(values["epmd_port"] || ""),
           {control_port, ""} <- Integer.parse(values["control_port"] || "") do
        {:ok, epmd_port, control_port}
      else
        _ -> :error
      end
    else
      :error
    end
  end
end
