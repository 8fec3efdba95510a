using Kawa.Dataflow.Nats.Pipeline;

namespace Kawa.Dataflow.Cli.Adapters;

/// <summary>
/// The daemon's view of a <see cref="NatsJetStreamSource"/> (see <see cref="RawEventSource{TSource}"/>): attributes carry
/// the subject, stream sequence and delivery count, and acks go straight to JetStream. The run's lag probe finds the
/// source through this type.
/// </summary>
internal sealed class JetStreamEventSource(NatsJetStreamSource inner) : RawEventSource<NatsJetStreamSource>(inner);
