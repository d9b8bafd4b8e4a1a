/** Public host keys made by ssh-keygen 9.2 for root@web01, for the SSH format and fingerprint tests. */
export const KEYS = {
  ed25519: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICbwMis9j92+8KOzrrQiD1jqXDR+a0TWt9mRowXVheX5 root@web01',
  ecdsa:
    'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIaKjLGpKLjdTTJk+YM/Ibz0EazdJUjkU3dDERRMD/AzaGHtzxVZoG8AIsGUMwYNM3bqO0nek5PMMwom91hg5O4= root@web01',
  rsa: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDXHS9d+hFF78UiIrR5e6PZY4i3Lq5U1Fg9EInJXEcSyvoQidwiZp6agLgrcRgKS6dGNtQjNuejvm3cd7xHK90LGQJDi8uWbwo77nY7ReX2lr+BM9xxIFmMwykO7+ldNhe2a8Rcm1mwjIdwqPmzsA/d3EDxdd9uQCx0HQfDDjytP8Heolz13K+CF8FWcOhUaxWsS1i5iLLUit5NiadP0h3CPmpQ1qO7U+2oCD7/mZH+9Pb78Zr1k4ojKfLT9dWQfHqHuSaUCW2OFQB3K8VfaOEZjhoTNT6H7hQiV+qxZJA7tvSsAMfw5pUKKoFgUsKYwFVKFdNvRQS7O9mnyE8HwJUnrar6MY+DPR3SuHiUD/AQhT/k8dEsvpXqHVD4gx+IwA5ZVtocrvk0VX657mr7RNUzO2zHnrUe44+6d+gqwJv5TbV1glN5Y9NNSOikDe8VgMIcs77frPNeuyidKiI4esmi6tzAI/W1QqmZTNQ7HdOXOMwFc2Tn4rcwRtW7VxCr87s= root@web01',
} as const;
