using Kawa.Dataflow.Nats.Pipeline;

namespace Kawa.Dataflow.Cli.Adapters;

/// <summary>
/// The daemon's view of a core NATS <see cref="NatsSource"/> (see <see cref="RawEventSource{TSource}"/>). At-most-once:
/// the source's ack tokens are no-ops, so a message in flight when kawa stops or fails is gone (<c>validate</c> warns
/// about this).
/// </summary>
internal sealed class CoreNatsEventSource(NatsSource inner) : RawEventSource<NatsSource>(inner);
