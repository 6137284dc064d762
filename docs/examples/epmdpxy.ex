defmodule Epmdpxy do
  @moduledoc """
  The API of the original Erlang EPMDPXY, on top of the epmdpxy binary,
  for `iex` (no `--sname` needed):

      Epmdpxy.start()                     # EPMD on $ERL_EPMD_PORT, else 4369
      Epmdpxy.start(43690)                # or another port; nodes use ERL_EPMD_PORT=43690
      Epmdpxy.cut_cables([:node1, :node2], [:node3, :node4, :node5])
      Epmdpxy.fix_cables([:node1, :node2], [:node3, :node4, :node5])
      Epmdpxy.stop()

  It needs `EpmdpxyCtl` (`epmdpxy_ctl.ex`) and nothing beyond Elixir and
  OTP: `iex -r epmdpxy_ctl.ex -r epmdpxy.ex`. It behaves as the Erlang
  module `epmdpxy` (docs/examples/epmdpxy.erl): one epmdpxy per VM, found
  and watched as `EpmdpxyCtl.start/1` does (so it never outlives the VM),
  `:ok` when epmdpxy answered OK, else `{:error, why}` as `EpmdpxyCtl`
  returns it, `{:error, :not_started}` when none runs, and an OK reply's
  note in parentheses (a name not registered yet, a fix that matched no
  cut) printed with `IO.puts/1`.

  State: the proxy is `EpmdpxyCtl`'s owner process, which nothing is
  linked to, registered as `Epmdpxy` (atomic, so of two concurrent starts
  one wins; the name goes away with the process). The map `EpmdpxyCtl`
  returned sits in `:persistent_term`, written once per start and read on
  every call; it counts only while the name points at the same owner.
  """

  @default_epmd_port 4369

  @type names :: EpmdpxyCtl.node_name() | [EpmdpxyCtl.node_name()]
  @type error :: {:error, :not_started | String.t() | {atom, term}}

  @doc "Starts epmdpxy as the EPMD on `$ERL_EPMD_PORT`, else 4369."
  @spec start() :: :ok | {:error, term}
  def start do
    text = System.get_env("ERL_EPMD_PORT", Integer.to_string(@default_epmd_port))

    case Integer.parse(text) do
      {epmd_port, ""} -> start(epmd_port)
      _ -> {:error, {:not_a_port, "ERL_EPMD_PORT=" <> text}}
    end
  end

  @doc """
  Starts epmdpxy as the EPMD on `epmd_port` (0: a free one, see `proxy/0`),
  with `EpmdpxyCtl.start/1`'s other options (`:path`, `:args`,
  `:timeout`). `{:error, :already_started}` when one runs already, even
  on the same port.
  """
  @spec start(:inet.port_number(), keyword) :: :ok | {:error, term}
  def start(epmd_port, options \\ []) when is_integer(epmd_port) do
    case proxy() do
      {:ok, _} -> {:error, :already_started}
      {:error, :not_started} -> launch(Keyword.put(options, :epmd_port, epmd_port))
    end
  end

  defp launch(options) do
    with {:ok, %{owner: owner} = proxy} <- EpmdpxyCtl.start(options) do
      try do
        Process.register(owner, __MODULE__)
        :persistent_term.put(__MODULE__, proxy)
      rescue
        ArgumentError ->
          # Another start won the race.
          EpmdpxyCtl.stop(proxy)
          {:error, :already_started}
      end
    end
  end

  @doc "Stops epmdpxy; returns once it is gone."
  @spec stop() :: :ok | error
  def stop do
    with {:ok, proxy} <- proxy() do
      EpmdpxyCtl.stop(proxy)
      :persistent_term.erase(__MODULE__)
      :ok
    end
  end

  @doc "The running proxy, for `EpmdpxyCtl`'s functions (`log/1`, `node_env/1`, ...)."
  @spec proxy() :: {:ok, EpmdpxyCtl.proxy()} | {:error, :not_started}
  def proxy do
    owner = Process.whereis(__MODULE__)

    case :persistent_term.get(__MODULE__, nil) do
      %{owner: ^owner} = proxy when is_pid(owner) -> {:ok, proxy}
      _ -> {:error, :not_started}
    end
  end

  @doc "Cuts every link between a node of `nodes1` and a node of `nodes2`, both ways."
  @spec cut_cables(names, names) :: :ok | error
  def cut_cables(nodes1, nodes2), do: command("cut " <> EpmdpxyCtl.islands_text([nodes1, nodes2]))

  @doc "Undoes exactly that cut. The next message or ping opens a new link."
  @spec fix_cables(names, names) :: :ok | error
  def fix_cables(nodes1, nodes2), do: command("fix " <> EpmdpxyCtl.islands_text([nodes1, nodes2]))

  @doc "Removes every fault."
  @spec heal() :: :ok | error
  def heal, do: command("heal")

  @doc "Cuts the nodes from every other node, also from nodes that register later."
  @spec isolate(names) :: :ok | error
  def isolate(nodes), do: command("isolate " <> EpmdpxyCtl.islands_text([nodes]))

  @doc "Undoes `isolate/1`."
  @spec rejoin(names) :: :ok | error
  def rejoin(nodes), do: command("rejoin " <> EpmdpxyCtl.islands_text([nodes]))

  @doc "The faults in force, one per line, in the syntax that creates them."
  @spec status() :: {:ok, [String.t()]} | error
  def status do
    with {:ok, proxy} <- proxy(), do: EpmdpxyCtl.status(proxy)
  end

  @doc "Any control command, e.g. `\"delay node1 | node2 200ms\"`."
  @spec command(String.t()) :: :ok | error
  def command(line) do
    with {:ok, proxy} <- proxy(),
         {:ok, summary, _data} <- EpmdpxyCtl.request(proxy, line) do
      # An OK reply's notes are in parentheses; none may go unseen, except
      # the plain count of the live links a fault covers.
      plain = Regex.replace(~r/ \(\d+ live links? (held|shaped)\)/, summary, "")
      if String.contains?(plain, " ("), do: IO.puts("epmdpxy: " <> summary)
      :ok
    end
  end
end
