namespace Kawa.Dataflow.Nats.Auth;

/// <summary>Reads a decorated <c>.creds</c> file: a user JWT block followed by an NKey seed block.</summary>
internal static class CredsFile
{
    /// <exception cref="FormatException">The file lacks a JWT or seed block; the message never contains either.</exception>
    public static (string Jwt, string Seed) Parse(string text)
    {
        var blocks = new List<string>();
        var lines = text.Replace("\r", string.Empty, StringComparison.Ordinal).Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.StartsWith("---", StringComparison.Ordinal) && line.Contains("BEGIN", StringComparison.Ordinal))
            {
                for (var j = i + 1; j < lines.Length; j++)
                {
                    var content = lines[j].Trim();
                    if (content.Length == 0)
                    {
                        continue;
                    }

                    if (!content.StartsWith("---", StringComparison.Ordinal))
                    {
                        blocks.Add(content);
                    }

                    i = j;
                    break;
                }
            }
        }

        if (blocks.Count < 2)
        {
            throw new FormatException($"The creds file holds {blocks.Count} decorated block(s); expected a user JWT block and an NKey seed block.");
        }

        return (blocks[0], blocks[1]);
    }
}

/// <summary>What the CONNECT carries, resolved from the options once per handshake.</summary>
internal sealed class NatsCredentials
{
    private readonly NatsConnectionOptions _options;

    public NatsCredentials(NatsConnectionOptions options) => _options = options;

    /// <summary>Fills the auth fields of <paramref name="connect"/>, signing <paramref name="nonce"/> when keys are used.</summary>
    public void Apply(Protocol.ConnectOptions connect, string? nonce)
    {
        if (_options.Token is not null)
        {
            connect.AuthToken = _options.Token;
            return;
        }

        if (_options.User is not null)
        {
            connect.User = _options.User;
            connect.Pass = _options.Password;
            return;
        }

        string? seed = null;
        string? jwt = _options.Jwt;
        if (_options.CredsFile is not null)
        {
            (jwt, seed) = CredsFile.Parse(File.ReadAllText(_options.CredsFile));
        }
        else if (_options.Creds is not null)
        {
            (jwt, seed) = CredsFile.Parse(_options.Creds);
        }
        else if (_options.NKeySeedFile is not null)
        {
            seed = File.ReadAllText(_options.NKeySeedFile).Trim();
        }
        else if (_options.NKeySeed is not null)
        {
            seed = _options.NKeySeed;
        }

        if (seed is null)
        {
            return;
        }

        var pair = NKeyPair.FromSeed(seed);
        if (jwt is not null)
        {
            connect.Jwt = jwt;
        }
        else
        {
            connect.NKey = pair.PublicKey;
        }

        if (nonce is not null)
        {
            connect.Sig = Convert.ToBase64String(pair.Sign(System.Text.Encoding.UTF8.GetBytes(nonce)))
                .TrimEnd('=').Replace('+', '-').Replace('/', '_');
        }
    }
}
