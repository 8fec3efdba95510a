namespace Kawa.Dataflow;

/// <summary>What a <see cref="RouterDestination{T}"/> does with a message no route takes and no default route exists.</summary>
public enum UnroutedBehavior
{
    /// <summary>Fatal: <see cref="IDestination{T}.SendAsync"/> throws <see cref="UnroutedMessageException"/> before sending anything. The default.</summary>
    Error = 0,

    /// <summary>The message is dropped and counts as acked (deliberately not written).</summary>
    DropAndAck = 1,
}

/// <summary>A message matched no route of a <see cref="RouterDestination{T}"/> and there is no default route.</summary>
public sealed class UnroutedMessageException : Exception
{
    /// <summary>Creates the exception.</summary>
    public UnroutedMessageException()
        : base("A message matched no route and there is no default route.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public UnroutedMessageException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public UnroutedMessageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    internal UnroutedMessageException(string? routeKey, string? messageKey, string? topic)
        : base($"A message (key '{messageKey}', topic '{topic}'{(routeKey is null ? string.Empty : $", route key '{routeKey}'")}) matched no route and the router has no default route. Add a route or a default, or set UnroutedBehavior.DropAndAck.")
    {
        RouteKey = routeKey;
    }

    /// <summary>For a key router, the key that had no route.</summary>
    public string? RouteKey { get; }
}

/// <summary>
/// A destination that sends each message to one of several named destinations, chosen by predicate (first match) or
/// by key, with an optional default route.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// <list type="bullet">
/// <item>The messages of one send may go to different routes: each route gets its share with its own token, and the
/// original token is settled once every route settled (acked if all acked, else the worst outcome). A keep-alive
/// (<see cref="AckToken.InProgress"/>) on a route's token reaches the original.</item>
/// <item>Unrouted messages: see <see cref="UnroutedBehavior"/>. With <see cref="UnroutedBehavior.Error"/> nothing of the send is written.</item>
/// <item>A route that throws is fatal: the send rethrows and the original token is left to the caller.</item>
/// <item><see cref="FlushAsync"/> drains every route (and the default), and <see cref="CommitHeldAsync"/> commits what
/// each holds, concurrently.</item>
/// </list>
/// </remarks>
public sealed class RouterDestination<T> : IDestination<T>, IPipelineMember
{
    private readonly Func<Message<T>, (IDestination<T>? Destination, string? Key)> _select;
    private readonly IDestination<T>[] _all;
    private readonly UnroutedBehavior _unrouted;

    private RouterDestination(Func<Message<T>, (IDestination<T>?, string?)> select, IDestination<T>[] all, UnroutedBehavior unrouted)
    {
        _select = select;
        _all = all;
        _unrouted = unrouted;
    }

    /// <summary>A router choosing the first route whose predicate accepts the message.</summary>
    /// <param name="routes">The routes, tried in order.</param>
    /// <param name="defaultRoute">Where messages no route accepts go; <see langword="null"/> for none.</param>
    /// <param name="unrouted">What to do with a message when no route accepts it and there is no default.</param>
    public static RouterDestination<T> ByPredicate(
        IReadOnlyList<(Func<Message<T>, bool> Predicate, IDestination<T> Destination)> routes,
        IDestination<T>? defaultRoute = null,
        UnroutedBehavior unrouted = UnroutedBehavior.Error)
    {
        ArgumentNullException.ThrowIfNull(routes);
        var copy = routes.ToArray();
        if (Array.Exists(copy, r => r.Predicate is null || r.Destination is null))
        {
            throw new ArgumentException("A route's predicate and destination must not be null.", nameof(routes));
        }

        return new RouterDestination<T>(
            message =>
            {
                foreach (var (predicate, destination) in copy)
                {
                    if (predicate(message))
                    {
                        return (destination, null);
                    }
                }

                return (defaultRoute, null);
            },
            Distinct(copy.Select(r => r.Destination), defaultRoute),
            unrouted);
    }

    /// <summary>A router choosing the route named by the message's key.</summary>
    /// <param name="key">The route key of a message (for example its topic, or a field of its payload).</param>
    /// <param name="routes">The destinations by route key (ordinal comparison unless the dictionary has its own).</param>
    /// <param name="defaultRoute">Where messages with an unknown or null key go; <see langword="null"/> for none.</param>
    /// <param name="unrouted">What to do with a message when its key has no route and there is no default.</param>
    public static RouterDestination<T> ByKey(
        Func<Message<T>, string?> key,
        IReadOnlyDictionary<string, IDestination<T>> routes,
        IDestination<T>? defaultRoute = null,
        UnroutedBehavior unrouted = UnroutedBehavior.Error)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(routes);
        if (routes.Values.Any(d => d is null))
        {
            throw new ArgumentException("A route's destination must not be null.", nameof(routes));
        }

        return new RouterDestination<T>(
            message =>
            {
                var routeKey = key(message);
                return (routeKey is not null && routes.TryGetValue(routeKey, out var destination) ? destination : defaultRoute, routeKey);
            },
            Distinct(routes.Values, defaultRoute),
            unrouted);
    }

    /// <inheritdoc/>
    public async ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ack);

        // Route everything first, so that an unrouted message fails the send before anything was written.
        var shares = new List<(IDestination<T> Destination, List<Message<T>> Messages)>(1);
        foreach (var message in messages)
        {
            var (destination, routeKey) = _select(message);
            if (destination is null)
            {
                if (_unrouted == UnroutedBehavior.Error)
                {
                    throw new UnroutedMessageException(routeKey, message.Key, message.Topic);
                }

                continue; // dropped on purpose: counts as done
            }

            var share = shares.Find(s => ReferenceEquals(s.Destination, destination));
            if (share.Destination is null)
            {
                share = (destination, new List<Message<T>>(messages.Count));
                shares.Add(share);
            }

            share.Messages.Add(message);
        }

        if (shares.Count == 0)
        {
            ack.Ack();
            return;
        }

        var group = new AckGroup(ack, shares.Count, null);
        var sends = new Task[shares.Count];
        for (var i = 0; i < shares.Count; i++)
        {
            var child = AckToken.Create(group.MessageSettled, group.InProgress);
            sends[i] = DestinationTasks.SendAsync(shares[i].Destination, child, new Messages<T>(shares[i].Messages), cancellationToken);
        }

        await DestinationTasks.WhenAllOrAbandonAsync(sends, group).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => DestinationTasks.FlushAsync(_all, cancellationToken);

    /// <inheritdoc/>
    public ValueTask CommitHeldAsync(CancellationToken cancellationToken = default) => DestinationTasks.CommitHeldAsync(_all, cancellationToken);

    void IPipelineMember.JoinPipeline(string pipeline) => PipelineMember.Join(_all, pipeline);

    TimeSpan IPipelineMember.LongestHold => PipelineMember.LongestHold(_all);

    private static IDestination<T>[] Distinct(IEnumerable<IDestination<T>> routes, IDestination<T>? defaultRoute)
    {
        var all = new List<IDestination<T>>();
        foreach (var destination in defaultRoute is null ? routes : routes.Append(defaultRoute))
        {
            if (!all.Exists(d => ReferenceEquals(d, destination)))
            {
                all.Add(destination);
            }
        }

        return [.. all];
    }
}
